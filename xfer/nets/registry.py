"""THE list of nets: every net of the paper (170) and of the `mini` suite, as data.

A net is a name plus: family, train/val datasets, base net, a per-layer policy for the 8 weight layers, the split
n, the solver schedule and the network shape (`arch`, see arch.py). Render, run, status, summary, figures
and tests all read this module; nothing else enumerates nets.

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
import dataclasses
import difflib
import fnmatch
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import XferError
from ..paths import RESULTS_DIR, cache_dir
from .arch import ARCHS, SUITE_ARCH, Arch  # noqa: F401  (Arch re-exported for callers)

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
FROZEN, TUNED, FRESH, RANDOM_FROZEN, TRAINED = "frozen", "tuned", "fresh", "random-frozen", "trained"
POLICIES = (FROZEN, TUNED, FRESH, RANDOM_FROZEN, TRAINED)
SUITES = ("paper", "mini")
SPLITS = ("0", "1", "2", "3")
NS = tuple(range(1, 8))


@dataclass(frozen=True)
class Schedule:
    base_lr: float
    lr_policy: str
    gamma: float
    stepsize: int
    max_iter: int
    momentum: float
    weight_decay: float
    test_iter: int
    test_interval: int
    display: int
    snapshot: int
    snapshot_prefix: str
    solver_mode: str
    # None: the line is left out (Caffe's default, a test at iteration 0), as in the paper's solver.
    test_initialization: "bool | None" = None
    # None: left out (Caffe seeds from the clock, as the paper did). A number makes a CPU run repeatable.
    random_seed: "int | None" = None


# The paper's solver (all nets but reduced-*), and the reduced nets' shorter one.
PAPER_SCHEDULE = Schedule(base_lr=0.01, lr_policy="step", gamma=0.1, stepsize=100000, max_iter=450000,
                          momentum=0.9, weight_decay=0.0005, test_iter=1000, test_interval=1000, display=20,
                          snapshot=10000, snapshot_prefix="caffe_imagenet_train", solver_mode="GPU")
PAPER_REDUCED_SCHEDULE = dataclasses.replace(PAPER_SCHEDULE, base_lr=0.0125, stepsize=64000, max_iter=200000)

# The mini suite: a scaled CaffeNet on Fashion-MNIST that trains on a CPU in under a minute per net.
# Recipe values are data: the demo tunes them here. test_iter covers the val set once (see MINI_VAL_IMAGES).
# One test, at the end: the summary's "mean of the 10 best tests" is then the final accuracy (the paper's 450 test
# points came from 450k iterations; a few tests early in a 1000-iteration run would only drag the mean down).
MINI_SCHEDULE = Schedule(base_lr=0.02, lr_policy="step", gamma=0.1, stepsize=750, max_iter=1000,
                         momentum=0.9, weight_decay=0.0005, test_iter=100, test_interval=1000, display=50,
                         snapshot=1000, snapshot_prefix="caffe_imagenet_train", solver_mode="CPU",
                         test_initialization=False, random_seed=1)
# Images in each mini val set (Fashion-MNIST's 10000 test images, 1000 per class): random halves hold 5 classes,
# the natman analogue splits clothing (A, 6 classes) from footwear and bags (B, 4 classes).
MINI_VAL_IMAGES = {"whole_valid": 10000, "halfnatmanA_valid": 6000, "halfnatmanB_valid": 4000, "half": 5000}

# Images per class kept by the reduced-NNNN nets; the last level is the whole set.
REDUCED_LEVELS = {
    "paper": (1, 2, 5, 10, 25, 50, 100, 250, 500, 750, 1000, 1300),
    "mini": (1, 2, 5, 10, 25, 50, 100, 250, 500, 750, 1000, 6000),  # Fashion-MNIST: 6000 per class
}
WHOLE_LEVEL = {"paper": 1300, "mini": 6000}

# Which (X, Y) pairs the suites contain. The paper ran only AA (selffer), AB and BA; the demo also needs BB.
PAPER_PAIRS = ("AA", "AB", "BA")
MINI_PAIRS = ("AA", "AB", "BA", "BB")


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
    # Every net subtracts one mean, the whole training set's, as the paper's single imagenet_mean.binaryproto did.
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


def _schedule(suite: str, family: str, val_data: str) -> Schedule:
    if suite == "paper":
        return PAPER_REDUCED_SCHEDULE if family == "reduced" else PAPER_SCHEDULE
    images = MINI_VAL_IMAGES.get(val_data, MINI_VAL_IMAGES["half"])
    val_batch = ARCHS[SUITE_ARCH[suite]].val_batch
    return dataclasses.replace(MINI_SCHEDULE, test_iter=-(-images // val_batch))


def make_net(name, suite, family, train_data, val_data, base=None, policy=None, n=None, split=None,
             schedule=None) -> Net:
    """One registry entry from plain data; every family (and any new variant) is built through here."""
    if suite not in SUITES:
        raise XferError(f"unknown suite {suite!r}", fix=f"use one of: {', '.join(SUITES)}")
    policy = tuple(policy or (TRAINED,) * len(LAYERS))
    bad = [p for p in policy if p not in POLICIES]
    if len(policy) != len(LAYERS) or bad:
        raise XferError(f"net {name}: policy must be 8 entries of {POLICIES}, got {policy}")
    if base is None and any(p in (FROZEN, TUNED) for p in policy):
        raise XferError(f"net {name}: layers are copied (frozen/tuned) but the net has no base")
    arch = SUITE_ARCH[suite]
    return Net(name=name, suite=suite, family=family, train_data=train_data, val_data=val_data, base=base,
               policy=policy, n=n, split=split, schedule=schedule or _schedule(suite, family, val_data),
               num_classes=ARCHS[arch].num_classes, arch=arch)


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
    data = "whole_train" if level == WHOLE_LEVEL[suite] else f"reduced{level:04d}_train"
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
    if suite not in SUITES:
        raise XferError(f"unknown suite {suite!r}", fix=f"use one of: {', '.join(SUITES)}")
    pairs = PAPER_PAIRS if suite == "paper" else MINI_PAIRS
    ft_splits = ("0", "1") if suite == "paper" else SPLITS
    out = [_half(suite, s, h) for s in SPLITS for h in "AB"]
    out += [_half(suite, "natman", h) for h in "AB"]
    out += [_netbase(suite)]
    out += [_reduced(suite, level) for level in REDUCED_LEVELS[suite]]
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
    if level not in REDUCED_LEVELS[suite]:
        raise XferError(f"reduced-{level:04d} is not a level of the {suite} suite",
                        fix=f"levels: {', '.join(f'{v:04d}' for v in REDUCED_LEVELS[suite])}")
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


def dependencies(net) -> list:
    """Names of the nets that must finish first (the base, if any)."""
    return [net.base] if net.base else []


def default_results(suite) -> Path:
    """Where `xfer render` puts a suite's nets (and run, train, status look): results/ for the paper, else the cache."""
    if suite == "paper":
        return RESULTS_DIR
    return cache_dir() / "mini" / "results"
