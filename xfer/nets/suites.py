"""The suites as data: a `Suite` names a network shape, its solver schedules, its datasets' class counts, the
reduced-volume levels, the (X, Y) pairs of its transfer nets and where its nets are rendered. The paper and the
mini suite are two registered instances; another suite (a rehearsal at another scale) is one more `register`.
Nothing else in the kit compares a suite's name: it asks the suite.
"""
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import XferError
from ..paths import ROOT, cache_dir
from . import layout
from .arch import ARCHS


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

    @property
    def final_alias(self) -> str:
        """The final snapshot's 2014 name, without the extension Caffe 1.0 adds: what the original README's
        `-weights basenet/caffe_imagenet_train_iter_450000` names (a link to the .caffemodel in each net folder)."""
        return layout.snapshot_alias(self.snapshot_prefix, self.max_iter)


@dataclass(frozen=True)
class Suite:
    name: str
    arch: str                         # key of arch.ARCHS: the network shape every net of the suite renders with
    schedule: Schedule                # the solver of every net but reduced-*
    reduced_schedule: Schedule        # the solver of the reduced-NNNN nets
    classes: dict                     # classes per dataset: "whole", "half" (random halves), "halfnatmanA"/"B"
    reduced_levels: tuple             # images per class of the reduced-NNNN nets; the last is the whole set
    pairs: tuple                      # (X, Y) pairs of the random-half transfer nets, e.g. ("AA", "AB", "BA")
    ft_splits: tuple                  # the splits that have fine-tuned (transfer-ft) nets
    results: str                      # where `xfer render` puts the nets: below the repository or the cache
    in_cache: bool = False
    # Images per val set (the key "half" stands for every random half): when given, each net's test_iter covers
    # its val set once; when None, the schedule's test_iter is used as it is.
    val_images: "dict | None" = field(default=None)
    default: bool = False             # the suite every verb uses without --suite
    natman_names: tuple = ("natural", "man-made")  # what halfnatmanA and halfnatmanB hold (Figure 3's legend)
    # The miniature's image source (a key of xfer.studies.tasks.TASKS: "fashion", "glyphs"); "" for a suite whose images
    # come from outside (the paper's ImageNet).
    task: str = ""
    # The cache folder below which its demo and recipe-search write by default ("": the cache itself).
    work: str = ""

    @property
    def whole_level(self) -> int:
        return self.reduced_levels[-1]

    def results_dir(self) -> Path:
        return (cache_dir() if self.in_cache else ROOT) / self.results

    def schedule_for(self, family: str, val_data: str) -> Schedule:
        """The solver of one net: the reduced nets' or the common one, test_iter sized to the val set."""
        schedule = self.reduced_schedule if family == "reduced" else self.schedule
        if self.val_images is None:
            return schedule
        images = self.val_images.get(val_data, self.val_images["half"])
        return dataclasses.replace(schedule, test_iter=-(-images // ARCHS[self.arch].val_batch))


# The paper's solver (all nets but reduced-*), and the reduced nets' shorter one.
PAPER_SCHEDULE = Schedule(base_lr=0.01, lr_policy="step", gamma=0.1, stepsize=100000, max_iter=450000,
                          momentum=0.9, weight_decay=0.0005, test_iter=1000, test_interval=1000, display=20,
                          snapshot=10000, snapshot_prefix="caffe_imagenet_train", solver_mode="GPU")
PAPER_REDUCED_SCHEDULE = dataclasses.replace(PAPER_SCHEDULE, base_lr=0.0125, stepsize=64000, max_iter=200000)

# The mini suite: a scaled CaffeNet on Fashion-MNIST that trains on a CPU in under a minute per net.
# Recipe values are data: the demo tunes them here. test_iter covers the val set once (see MINI.val_images).
# One test, at the end: the summary's "mean of the 10 best tests" is then the final accuracy (the paper's 450 test
# points came from 450k iterations; a few tests early in a 1000-iteration run would only drag the mean down).
MINI_SCHEDULE = Schedule(base_lr=0.02, lr_policy="step", gamma=0.1, stepsize=750, max_iter=1000,
                         momentum=0.9, weight_decay=0.0005, test_iter=100, test_interval=1000, display=50,
                         snapshot=1000, snapshot_prefix="caffe_imagenet_train", solver_mode="CPU",
                         test_initialization=False, random_seed=1)

PAPER = Suite(
    name="paper", arch="caffenet", schedule=PAPER_SCHEDULE, reduced_schedule=PAPER_REDUCED_SCHEDULE,
    # halfnatmanA is the natural half (449 classes), B the man-made one (551), as in the original files
    classes={"whole": 1000, "half": 500, "halfnatmanA": 449, "halfnatmanB": 551},
    reduced_levels=(1, 2, 5, 10, 25, 50, 100, 250, 500, 750, 1000, 1300),
    pairs=("AA", "AB", "BA"),  # the paper ran only AA (selffer), AB and BA
    ft_splits=("0", "1"), results="results", default=True)

MINI = Suite(
    name="mini", arch="mini", schedule=MINI_SCHEDULE, reduced_schedule=MINI_SCHEDULE,
    # the natman analogue splits clothing (A, 6 classes) from footwear and bags (B, 4 classes)
    classes={"whole": 10, "half": 5, "halfnatmanA": 6, "halfnatmanB": 4},
    reduced_levels=(1, 2, 5, 10, 25, 50, 100, 250, 500, 750, 1000, 6000),  # Fashion-MNIST: 6000 per class
    pairs=("AA", "AB", "BA", "BB"),  # the demo also needs BB
    ft_splits=("0", "1", "2", "3"), results="mini/results", in_cache=True,
    # Fashion-MNIST's 10000 test images, 1000 per class: a random half holds 5 classes
    val_images={"whole_valid": 10000, "halfnatmanA_valid": 6000, "halfnatmanB_valid": 4000, "half": 5000},
    natman_names=("clothing", "footwear and bags"), task="fashion")

# The glyph suite: 200 letters of 10 scripts (xfer/studies/glyphs.py), 100 classes per random half, on the mini
# shape with 200 outputs. The schedule is the mini one (1000 iterations of 64, every net the same budget).
GLYPHS_SCHEDULE = MINI_SCHEDULE

GLYPHS = Suite(
    name="glyphs", arch="glyphs", schedule=GLYPHS_SCHEDULE, reduced_schedule=GLYPHS_SCHEDULE,
    # the natman analogue: alphabets (A, 100 classes: Latin, Greek, Cyrillic, Armenian, Georgian) against Brahmic
    # abugidas (B, 100 classes: Devanagari, Bengali, Gujarati, Tamil, Thai)
    classes={"whole": 200, "half": 100, "halfnatmanA": 100, "halfnatmanB": 100},
    reduced_levels=(1, 2, 5, 10, 25, 50, 100, 250),  # 250 training images per class
    pairs=("AA", "AB", "BA", "BB"), ft_splits=("0", "1", "2", "3"), results="glyphs/results", in_cache=True,
    # 50 val images per class
    val_images={"whole_valid": 10000, "halfnatmanA_valid": 5000, "halfnatmanB_valid": 5000, "half": 5000},
    natman_names=("alphabets", "Brahmic scripts"), task="glyphs", work="glyphs")

_SUITES = {}


def register(suite: Suite) -> Suite:
    """Make a suite known by its name (to the registry, every verb's --suite and the tests)."""
    if suite.arch not in ARCHS:
        raise XferError(f"suite {suite.name}: unknown arch {suite.arch!r}", fix=f"use one of: {', '.join(ARCHS)}")
    _SUITES[suite.name] = suite
    return suite


def names() -> tuple:
    return tuple(_SUITES)


def get(name) -> Suite:
    found = _SUITES.get(name)
    if found is None:
        raise XferError(f"unknown suite {name!r}", fix=f"use one of: {', '.join(_SUITES)}")
    return found


def default() -> Suite:
    return next(s for s in _SUITES.values() if s.default)


register(PAPER)
register(MINI)
register(GLYPHS)
