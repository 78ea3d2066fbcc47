"""THE list of nets: every net of each registered suite (the paper's 170, the `mini` suite's 268), as data.

A net is a name plus: family, train/val datasets, base net, a per-layer policy for the 8 weight layers, the split
n, the solver schedule and the network shape (`arch`, see arch.py); what differs between suites is the suite's data
(suites.py). Render, run, status, summary, figures, the demo and tests all read this module. It lists and parses
nets through the registered families (families.py; the paper's in paper_families.py): each family's grammar and
builder live in its one entry there.

Name grammar (the paper's folder names):
  half{s}{A|B}                 base net on a random half (s = split seed 0..3)
  halfnatman{A|B}              base net on the natural (A) / man-made (B) half
  netbase                      base net on the whole set
  reduced-NNNN                 base net on NNNN images per class (reduced-1300 = the whole set)
  nolearn_1_n                  layers 1..n frozen at their random init, the rest trained, whole set
  transfer{s}{X}{s}{Y}_1_n     base half{s}X, data half{s}Y; layers 1..n copied and frozen, n+1..8 fresh
  transfer-ft{s}{X}{s}{Y}_1_n  the same with layers 1..n copied and fine-tuned
  transfernatman{X}{Y}_1_n     the same on the natman halves (transfer-ftnatman… for fine-tuned)
X == Y gives the paper's "selffer" nets (the paper's BnB / BnB+ controls).
"""
import difflib
import fnmatch
import functools
import re
from pathlib import Path

from ..errors import XferError
from . import families, paper_families, suites  # noqa: F401  (paper_families registers the paper's families)
from .arch import ARCHS, Arch  # noqa: F401  (re-exported)
from .builders import (FRESH, FROZEN, LAYERS, MEAN_RULE, NS, POLICIES, RANDOM_FROZEN, SPLITS,  # noqa: F401
                       TRAINED, TUNED, Net, make_net, mean_dataset, parse_name, preserve_net, preserve_policy,
                       preserved_layers, reduced_level, trained_half, transfer_policy)
from .suites import Schedule, Suite  # noqa: F401  (re-exported: render and callers read them from here)


def suite(name) -> Suite:
    """The registered suite called `name` (an XferError naming the known ones when there is none)."""
    return suites.get(name)


def suite_names() -> tuple:
    """The registered suites' names, the default first (the --suite choices)."""
    return suites.names()


def default_suite() -> str:
    return suites.default().name


def _suite(suite) -> tuple:
    return _listed(suite or default_suite(), families.version())


@functools.lru_cache(maxsize=None)
def _listed(suite, version) -> tuple:
    """Every registered family's nets of a suite, in registration order (version: families.version(), so a family
    registered later is listed too)."""
    return tuple(net for name in families.family_names() for net in families.get(name).members(suite))


def nets(suite=None) -> list:
    """All nets of a suite, base nets before the nets that need them."""
    return list(_suite(suite))


def _by_name(suite) -> dict:
    return _names(suite or default_suite(), families.version())


@functools.lru_cache(maxsize=None)
def _names(suite, version) -> dict:
    return {net.name: net for net in _suite(suite)}


def get(name, suite=None) -> Net:
    """The net called `name` (in the default suite unless another is named); an XferError listing the closest
    names when there is none."""
    suite = suite or default_suite()
    found = _by_name(suite).get(name)
    if found is not None:
        return found
    try:
        variant = parse_name(name, suite)
    except XferError:
        variant = None
    if variant is not None and variant.family == "preserve":
        return variant
    close = difflib.get_close_matches(name, list(_by_name(suite)), n=5, cutoff=0.6)
    hint = f"closest names: {', '.join(close)}" if close else f"see `xfer nets --suite {suite}`"
    raise XferError(f"no net named {name!r} in the {suite} suite", fix=hint)


def match(patterns, suite=None) -> list:
    """Nets whose names match any of the fnmatch-style patterns, in registry order; no patterns: all nets."""
    all_nets = nets(suite)
    if not patterns:
        return all_nets
    return [net for net in all_nets if any(fnmatch.fnmatchcase(net.name, p) for p in patterns)]


def describe(name) -> "Net | None":
    """The net a name stands for in the first suite whose grammar takes it (any folder name, also of the paper's
    tree or a preserve variant), or None for names outside the grammar."""
    for suite in suite_names():
        try:
            return parse_name(name, suite)
        except XferError:
            continue
    return None


def compress(names) -> str:
    """`transfer1A1B_1_1 ... transfer1A1B_1_7` -> `transfer1A1B_1_{1..7}`: a list of nets a person can read."""
    groups = {}
    for name in sorted(names):
        m = re.fullmatch(r"(.*_1_)(\d)", name)
        stem, n = (m[1], int(m[2])) if m else (name, None)
        groups.setdefault(stem, []).append(n)
    parts = []
    for stem, ns in groups.items():
        ns = sorted(n for n in ns if n is not None)
        if not ns:
            parts.append(stem)
        elif len(ns) == 1:
            parts.append(f"{stem}{ns[0]}")
        elif ns == list(range(ns[0], ns[-1] + 1)):
            parts.append(f"{stem}{{{ns[0]}..{ns[-1]}}}")
        else:
            parts.append(f"{stem}{{{','.join(map(str, ns))}}}")
    return ", ".join(parts)


def dependencies(net) -> list:
    """Names of the nets that must finish first (the base, if any)."""
    return [net.base] if net.base else []


def default_results(suite) -> Path:
    """Where `xfer render` puts a suite's nets (and run, train, status look): results/ for the paper, the cache for
    the mini suite (the suite's `results`)."""
    return suites.get(suite or default_suite()).results_dir()


def datasets_of(nets) -> list:
    """The datasets the nets read (train, val, and the mean's), in first-use order: what `xfer db` must build."""
    seen = []
    for net in nets:
        for name in (net.mean_data, net.train_data, net.val_data):
            if name not in seen:
                seen.append(name)
    return seen
