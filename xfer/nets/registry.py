"""THE list of nets: every net of each registered suite (the paper's 170, the `mini` suite's 268), as data.

A net is a name plus: family, train/val datasets, base net, a per-layer policy for the 8 weight layers, the split
n, the solver schedule and the network shape (`arch`, see arch.py); what differs between suites is the suite's data
(suites.py). Render, run, status, summary, figures, the demo and tests all read this module; nothing else
enumerates nets or spells the name grammar.

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
from dataclasses import dataclass
from pathlib import Path

from ..errors import XferError
from . import suites
from .arch import ARCHS, Arch
from .suites import Schedule, Suite  # noqa: F401  (re-exported: render and callers read them from here)

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
FROZEN, TUNED, FRESH, RANDOM_FROZEN, TRAINED = "frozen", "tuned", "fresh", "random-frozen", "trained"
POLICIES = (FROZEN, TUNED, FRESH, RANDOM_FROZEN, TRAINED)
SPLITS = ("0", "1", "2", "3")
NS = tuple(range(1, 8))


@dataclass(frozen=True)
class Net:
    name: str
    suite: str
    family: str
    train_data: str
    val_data: str
    base: "str | None"
    policy: tuple
    n: "int | None"
    split: "str | None"
    schedule: Schedule
    num_classes: int
    arch: str = "caffenet"
    # The dataset whose mean.binaryproto the net subtracts (MEAN_RULE, set by make_net).
    mean_data: str = "whole_train"

    def layer_name(self, layer) -> str:
        """The layer's name in this net: `<name>-new` for fresh layers, so Caffe's copy-by-name skips them."""
        return f"{layer}-new" if self.policy[LAYERS.index(layer)] == FRESH else layer

    def copied_layers(self) -> list:
        return [layer for layer, pol in zip(LAYERS, self.policy) if pol in (FROZEN, TUNED)]

    def frozen_layers(self) -> list:
        return [layer for layer, pol in zip(LAYERS, self.policy) if pol in (FROZEN, RANDOM_FROZEN)]

    def final_snapshot(self) -> str:
        return f"{self.schedule.snapshot_prefix}_iter_{self.schedule.max_iter}.caffemodel"

    def spec(self) -> Arch:
        """The network shape (widths, kernels, fillers, batch sizes, crop) this net renders with."""
        return ARCHS[self.arch]


def transfer_policy(n: int, first: str, rest: str = FRESH) -> tuple:
    """Layers 1..n get `first`, layers n+1..8 get `rest`."""
    return tuple(first if i < n else rest for i in range(len(LAYERS)))


def preserve_policy(n: int, extra: int) -> tuple:
    """The supplementary 'preserve' variant: 1..n frozen, `extra` further layers copied and tuned, the rest fresh."""
    if not (1 <= n and extra >= 1 and n + extra <= len(LAYERS)):
        raise XferError(f"preserve needs 1 <= n and extra >= 1 with n + extra <= 8 (got n={n}, extra={extra})")
    return tuple(FROZEN if i < n else TUNED if i < n + extra else FRESH for i in range(len(LAYERS)))


def suite(name) -> Suite:
    """The registered suite called `name` (an XferError naming the known ones when there is none)."""
    return suites.get(name)


def suite_names() -> tuple:
    """The registered suites' names, the default first (the --suite choices)."""
    return suites.names()


def default_suite() -> str:
    return suites.default().name


# The paper's mean rule (its results/ tree held 23 different imagenet_mean.binaryproto files): a net subtracts the
# mean of the training set its weights first learned on. A net with a base (transfer, transfer-ft, natman transfer,
# preserve) copies layers that learned on the base's mean, so it subtracts the base's training set's mean even
# though it trains on another set (transfer0B0A_1_3: half0B's). Every other net (the halves, netbase, nolearn,
# reduced-NNNN; reduced-1300 is whole_train) subtracts its own training set's mean.
MEAN_RULE = "the base's training set if the net has a base, else its own training set"


def mean_dataset(suite, train_data, base=None) -> str:
    """The dataset whose mean a net subtracts, by MEAN_RULE (the base is built from the grammar: it has no base)."""
    return parse_name(base, suite).train_data if base else train_data


def make_net(name, suite, family, train_data, val_data, base=None, policy=None, n=None, split=None,
             schedule=None) -> Net:
    """One registry entry from plain data; every family (and any new variant) is built through here."""
    spec = suites.get(suite)
    policy = tuple(policy or (TRAINED,) * len(LAYERS))
    bad = [p for p in policy if p not in POLICIES]
    if len(policy) != len(LAYERS) or bad:
        raise XferError(f"net {name}: policy must be 8 entries of {POLICIES}, got {policy}")
    if base is None and any(p in (FROZEN, TUNED) for p in policy):
        raise XferError(f"net {name}: layers are copied (frozen/tuned) but the net has no base")
    return Net(name=name, suite=suite, family=family, train_data=train_data, val_data=val_data, base=base,
               policy=policy, n=n, split=split, schedule=schedule or spec.schedule_for(family, val_data),
               num_classes=ARCHS[spec.arch].num_classes, arch=spec.arch,
               mean_data=mean_dataset(suite, train_data, base))


def _half(suite, split, half) -> Net:
    family = "natman-base" if split == "natman" else "base"
    prefix = f"half{split}{half}"
    return make_net(prefix, suite, family, f"{prefix}_train", f"{prefix}_valid", split=split)


def _transfer(suite, split, x, y, n, tuned) -> Net:
    ft = "-ft" if tuned else ""
    if split == "natman":
        name, family = f"transfer{ft}natman{x}{y}_1_{n}", "natman-transfer" + ("-ft" if tuned else "")
        base, data = f"halfnatman{x}", f"halfnatman{y}"
    else:
        name, base, data = f"transfer{ft}{split}{x}{split}{y}_1_{n}", f"half{split}{x}", f"half{split}{y}"
        family = ("selffer" if x == y else "transfer") + ft
    policy = transfer_policy(n, TUNED if tuned else FROZEN)
    return make_net(name, suite, family, f"{data}_train", f"{data}_valid", base=base, policy=policy, n=n,
                    split=split)


def _reduced(suite, level) -> Net:
    data = "whole_train" if level == suites.get(suite).whole_level else f"reduced{level:04d}_train"
    return make_net(f"reduced-{level:04d}", suite, "reduced", data, "whole_valid")


def _netbase(suite) -> Net:
    return make_net("netbase", suite, "netbase", "whole_train", "whole_valid")


def _nolearn(suite, n) -> Net:
    return make_net(f"nolearn_1_{n}", suite, "nolearn", "whole_train", "whole_valid",
                    policy=transfer_policy(n, RANDOM_FROZEN, TRAINED), n=n)


def preserve_net(suite, split, x, y, n, extra) -> Net:
    """A supplementary 'preserve' net: base half{s}X, 1..n frozen, n+1..n+extra copied and tuned, rest fresh."""
    name = f"preserve{extra}_{split}{x}{split}{y}_1_{n}"
    return make_net(name, suite, "preserve", f"half{split}{y}_train", f"half{split}{y}_valid",
                    base=f"half{split}{x}", policy=preserve_policy(n, extra), n=n, split=split)


@functools.lru_cache(maxsize=None)
def _suite(suite) -> tuple:
    spec = suites.get(suite)
    pairs, ft_splits = spec.pairs, spec.ft_splits
    out = [_half(suite, s, h) for s in SPLITS for h in "AB"]
    out += [_half(suite, "natman", h) for h in "AB"]
    out += [_netbase(suite)]
    out += [_reduced(suite, level) for level in spec.reduced_levels]
    out += [_nolearn(suite, n) for n in NS]
    out += [_transfer(suite, s, xy[0], xy[1], n, False) for s in SPLITS for xy in pairs for n in NS]
    out += [_transfer(suite, s, xy[0], xy[1], n, True) for s in ft_splits for xy in pairs for n in NS]
    out += [_transfer(suite, "natman", x, y, n, False) for x, y in ("AB", "BA") for n in NS]
    return tuple(out)


def nets(suite="paper") -> list:
    """All nets of a suite, base nets before the nets that need them."""
    return list(_suite(suite))


@functools.lru_cache(maxsize=None)
def _by_name(suite) -> dict:
    return {net.name: net for net in _suite(suite)}


def get(name, suite="paper") -> Net:
    """The net called `name`; an XferError listing the closest names when there is none."""
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


def match(patterns, suite="paper") -> list:
    """Nets whose names match any of the fnmatch-style patterns, in registry order; no patterns: all nets."""
    all_nets = nets(suite)
    if not patterns:
        return all_nets
    return [net for net in all_nets if any(fnmatch.fnmatchcase(net.name, p) for p in patterns)]


_GRAMMAR = [
    (re.compile(r"half([0-3])([AB])"), lambda m, s: _half(s, m[1], m[2])),
    (re.compile(r"halfnatman([AB])"), lambda m, s: _half(s, "natman", m[1])),
    (re.compile(r"netbase"), lambda m, s: _netbase(s)),
    (re.compile(r"reduced-(\d{4})"), lambda m, s: _reduced_checked(s, int(m[1]))),
    (re.compile(r"nolearn_1_([1-7])"), lambda m, s: _nolearn(s, int(m[1]))),
    (re.compile(r"transfer(-ft)?([0-3])([AB])\2([AB])_1_([1-7])"),
     lambda m, s: _transfer(s, m[2], m[3], m[4], int(m[5]), bool(m[1]))),
    (re.compile(r"transfer(-ft)?natman([AB])([AB])_1_([1-7])"),
     lambda m, s: _transfer(s, "natman", m[2], m[3], int(m[4]), bool(m[1]))),
    (re.compile(r"preserve([1-7])_([0-3])([AB])\2([AB])_1_([1-7])"),
     lambda m, s: preserve_net(s, m[2], m[3], m[4], int(m[5]), int(m[1]))),
]


def _reduced_checked(suite, level) -> Net:
    levels = suites.get(suite).reduced_levels
    if level not in levels:
        raise XferError(f"reduced-{level:04d} is not a level of the {suite} suite",
                        fix=f"levels: {', '.join(f'{v:04d}' for v in levels)}")
    return _reduced(suite, level)


def parse_name(name, suite="paper") -> Net:
    """A Net from the name grammar alone (works for any grammatical name, e.g. a folder of the paper's tree)."""
    for pattern, build in _GRAMMAR:
        m = pattern.fullmatch(name)
        if m:
            return build(m, suite)
    raise XferError(f"{name!r} is not a net name of the paper's grammar",
                    fix="names look like half0A, halfnatmanB, netbase, reduced-0050, nolearn_1_3, "
                        "transfer0A0B_1_3, transfer-ft1B1A_1_5, transfernatmanAB_1_2")


def describe(name) -> "Net | None":
    """The net a name stands for in the first suite whose grammar takes it (any folder name, also of the paper's
    tree or a preserve variant), or None for names outside the grammar."""
    for suite in suite_names():
        try:
            return parse_name(name, suite)
        except XferError:
            continue
    return None


def trained_half(net) -> "str | None":
    """"A" or "B": the half (random or natman) a net trains on; None for nets on the whole or a reduced set."""
    found = re.fullmatch(r"half(?:[0-3]|natman)([AB])_train", net.train_data)
    return found[1] if found else None


def reduced_level(net) -> int:
    """Images per class a reduced-NNNN net trains on (its NNNN)."""
    return int(re.fullmatch(r"reduced-(\d{4})", net.name)[1])


def preserved_layers(net) -> int:
    """How many layers past 1..n a preserve net copies and fine-tunes (its `preserve{k}_` prefix)."""
    return net.policy.count(TUNED)


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
    return suites.get(suite).results_dir()


def datasets_of(nets) -> list:
    """The datasets the nets read (train, val, and the mean's), in first-use order: what `xfer db` must build."""
    seen = []
    for net in nets:
        for name in (net.mean_data, net.train_data, net.val_data):
            if name not in seen:
                seen.append(name)
    return seen
