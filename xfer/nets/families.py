"""The one place each net family and each figure series is registered (timm's `register` / `list` by name).

A `Family` is everything the kit knows about one kind of net: its name grammar and builder (registry.py asks them to
parse and list nets), the nets it adds to a suite, and where each of its nets goes in the figures and tables: a
`Series` label and an x (layer n, images per class). A `Series` holds how that line is named in the comparison
table, how draw.py marks it, and which point its differences are taken against. Summary, figures, draw, compare,
the demo, the recipe search and the layer-wise analysis all ask these entries; a net whose family or series is not
registered is an error that names the fix, never a row silently dropped.

The paper's families are registered by xfer/nets/paper_families.py; a new family is one `register(Family(...))`.
"""
import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..errors import XferError

_FAMILIES: dict = {}
_SERIES: dict = {}
_VERSION = [0]  # bumped on every registration: registry.py's per-suite caches are keyed by it


@dataclass(frozen=True)
class Series:
    label: str                          # summary's and the figures' name of the line ("AnB")
    text: str                           # its row in the comparison table ("transfer AnB")
    style: dict = field(default_factory=dict)  # how draw.py marks it (marker, color, edge, shift, label)
    reference: Optional[tuple] = None   # (series, x) its differences are taken to; None: not in that table


@dataclass(frozen=True)
class Family:
    name: str                                     # the Net.family value ("transfer")
    place: Callable                               # net -> (series label, x) in the figures and tables
    grammar: Optional[str] = None                 # a regex its names fullmatch (None: listed, never parsed)
    build: Optional[Callable] = None              # (match, suite) -> Net for a name of that grammar
    members: Callable = lambda suite: ()          # suite -> the nets this family adds to that suite, in order
    example: str = ""                             # a name of the grammar, for the error that lists them

    def pattern(self):
        return re.compile(self.grammar) if self.grammar else None


def register(entry):
    """Register a Family or a Series by its name (a new entry replaces one of the same name)."""
    table = _FAMILIES if isinstance(entry, Family) else _SERIES
    table[entry.name if isinstance(entry, Family) else entry.label] = entry
    _VERSION[0] += 1
    return entry


def unregister(name):
    """Remove a family or a series (tests that register a toy entry take it back out)."""
    found = _FAMILIES.pop(name, None) or _SERIES.pop(name, None)
    _VERSION[0] += 1
    return found


def version() -> int:
    return _VERSION[0]


def family_names() -> tuple:
    return tuple(_FAMILIES)


def get(name) -> Family:
    if name not in _FAMILIES:
        raise XferError(f"net family {name!r} is not registered",
                        fix="register it: families.register(Family(...)) (see xfer/nets/paper_families.py)")
    return _FAMILIES[name]


def series(label) -> Series:
    """The registered series of a label; preserveK and other numbered labels fall back to their stem."""
    found = _SERIES.get(label) or _SERIES.get(label.rstrip("0123456789"))
    if found is None:
        raise XferError(f"figure series {label!r} is not registered",
                        fix="register it: families.register(Series(...)) (see xfer/nets/paper_families.py)")
    return found


def all_series() -> list:
    """Every registered series, in registration order (the comparison table's row order)."""
    return list(_SERIES.values())


def place(net) -> tuple:
    """(series label, x) of a net: its family's entry decides, and the label must be a registered series."""
    label, x = get(net.family).place(net)
    series(label)
    return label, x


def style(label) -> dict:
    return series(label).style


def grammars() -> list:
    """(compiled pattern, build) of every family that has a name grammar, in registration order."""
    return [(f.pattern(), f.build) for f in _FAMILIES.values() if f.grammar]


def examples() -> str:
    return ", ".join(f.example for f in _FAMILIES.values() if f.example)
