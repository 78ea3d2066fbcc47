"""The mini pipeline the demo and the recipe search share: a miniature's data, then its nets rendered and trained.

  images  a suite's image source (xfer/studies/tasks.py) -> <out>/images/{train,val}/<class>/*.png
  lists   the image tree -> whole_train / whole_valid lists                        (`xfer imagenet-lists`)
  splits  splits.make_all: random halves per seed, the natman analogue, reduced volumes   (`xfer splits`)
  db      LMDBs and mean files of the datasets the nets read                       (`xfer db`)
  render  the nets from the registry and templates (a recipe's overrides on top)   (`xfer render`)
  train   bases first, on CPU slots, through the local backend                     (`xfer run`)
The numbers and figures of what trained are each study's own (xfer/studies/demo.py, recipes.py). Every step keeps
what is done, so running it again only does what is missing.
"""
import shutil
import time
from pathlib import Path

from .. import caffeenv
from ..data import databases, lists, splits
from ..errors import XferError
from ..nets import registry, render
from ..progress import say
from ..run import backends
from ..run.runner import plan, run_graph
from . import tasks

SUITE = "mini"


def step(title):
    say(f"\n== {title}")
    return time.monotonic()


def done(started, what=""):
    say(f"   {what + ' ' if what else ''}({time.monotonic() - started:.1f} s)")


def parse_seeds(text) -> list:
    """The random-half seeds of --seeds ("0" or "0,1,2"), sorted, each one of the paper's 0..3."""
    try:
        seeds = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as exc:
        raise XferError(f"--seeds wants seed numbers like 0 or 0,1 (got {text!r})") from exc
    if not seeds or any(s not in range(4) for s in seeds):
        raise XferError(f"--seeds: the paper's random halves have seeds 0..3 (got {text!r})")
    return seeds


def split_names(seed, layers_by_family, suite=SUITE) -> list:
    """Both bases of one seed's split, then each family's nets onto half B at its layers n, in that order."""
    split = [net for net in registry.nets(suite) if net.split == str(seed)]
    names = [net.name for net in split if net.family == "base"]
    for family, layers in layers_by_family.items():
        onto_b = {net.n: net.name for net in split if net.family == family and registry.trained_half(net) == "B"}
        names += [onto_b[n] for n in layers]
    return names


def make_images(out, suite=SUITE, per_class=None) -> Path:
    task = tasks.of_suite(suite)
    started = step(f"images: {task.title} as an ImageNet-style tree")
    counts = task.write_image_tree(out / "images", per_class)
    done(started, f"{counts['train']} train and {counts['val']} val images in {out / 'images'}")
    return out / "images"


def make_lists(images, data, seeds, suite=SUITE) -> None:
    """The whole lists of the image tree, then every split list through splits.make_all (the one place a new
    derivative list is added): the seeds' halves, the natman analogue from the task's natural classes and the
    suite's reduced levels (the last level is whole_train itself)."""
    started = step("lists and splits: whole lists, random halves, natman analogue, reduced volumes")
    info = lists.write_whole_lists_from_folders(images / "train", images / "val", data)
    splits.make_all(data, seeds=seeds, natural_classes=tasks.of_suite(suite).natural_classes(),
                    counts=registry.suite(suite).reduced_levels[:-1])
    for seed in seeds:
        say(f"   seed {seed}: A = {class_names(data, 'half%dA' % seed, suite)}")
        say(f"           B = {class_names(data, 'half%dB' % seed, suite)}")
    done(started, f"{len(info['classes'])} classes, {info['train']} train / {info['valid']} val images, "
                  f"lists in {data}")


def class_names(data, half, suite=SUITE, shown=12) -> str:
    """The classes of a half, from its idxmap (old label -> new label); the first `shown` of a long list."""
    lines = (data / f"{half}_train" / "idxmap.txt").read_text().splitlines()
    old = [int(line.split()[0]) for line in lines if line.strip() and not line.startswith("#")]
    names = tasks.of_suite(suite).class_names()
    more = f" ... ({len(old)} classes)" if len(old) > shown else ""
    return ", ".join(names[i] for i in old[:shown]) + more


def make_databases(data, nets) -> None:
    started = step("db: LMDBs and mean files")
    names = registry.datasets_of(nets)
    databases.build_databases(data, datasets=names, backend="lmdb", resize=0, gray=True)
    done(started, f"{len(names)} datasets")


def make_data(out, suite=SUITE, seeds=(0,), per_class=None, db=True) -> Path:
    """`xfer images`: a miniature's image tree, lists and splits (and the databases of every net of the seeds'
    splits, the natman halves, the whole and reduced sets) under `out`; returns its data dir."""
    out, data = Path(out), Path(out) / "data"
    make_lists(make_images(out, suite, per_class), data, seeds, suite)
    if db:
        keep = {str(seed) for seed in seeds} | {"natman", None}
        make_databases(data, [net for net in registry.nets(suite) if net.split in keep])
    return data


def render_nets(results, data, nets, force=False, overrides=None) -> None:
    """Render the nets (overrides: a recipe's, on top of the registry's schedule and shape); force: first remove
    the folders whose recipe changed, so they train again."""
    started = step(f"render: {len(nets)} nets of the {nets[0].suite if nets else SUITE} suite")
    if force:
        for folder in outdated(results, data, nets, overrides):
            # Its logs and snapshots come from the old recipe: mixed into the new figure they would mislead.
            say(f"   the recipe of {folder.name} changed: its folder is removed and it trains again")
            shutil.rmtree(folder)
    render.render(nets, results, data, overrides=overrides)
    done(started, f"into {results}")


def outdated(results, data, nets, overrides=None) -> list:
    """Folders of nets whose recipe (rendered prototxts, mean and data links) differs from what the registry and
    templates give now, and of the nets built on them (their frozen layers came from the old base). `nets` lists
    bases first."""
    names = set()
    for net in nets:
        changed = render.plan_net(net, results / net.name, data, overrides=overrides).recipe_changes()
        if changed or names.intersection(registry.dependencies(net)):
            names.add(net.name)
    return [results / net.name for net in nets if net.name in names and (results / net.name).exists()]


def train_nets(results, nets, slots, suite=SUITE) -> int:
    """Train what is not finished (bases first) through the local backend of `xfer run`, `slots` nets at once on
    the CPU, each Caffe with the pinned BLAS (caffeenv.pinned_blas_env: the same numbers on any AVX2 machine)."""
    started = step(f"train: {len(nets)} nets, {slots} at once on CPU slots")
    names = [net.name for net in nets]
    _todo, finished = plan(names, suite, results)
    if finished:
        say(f"   finished already: {len(finished)} nets")
    env, line = caffeenv.pinned_blas_env()
    say(f"   {line}")
    # `xfer run`'s own path, its pre-start checks (rendered, labels, stale weights) included.
    code = run_graph(names, suite, results, "local", backends.RunOptions(cpu=True, own={"slots": slots}, env=env))
    done(started)
    return code
