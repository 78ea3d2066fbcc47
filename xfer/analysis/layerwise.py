"""The layer-by-layer figures of a whole results tree, as the demo and the notebook draw them.

From what the tree holds trained (final snapshots, not logs): the first random split whose base A and base B
are both finished gives
  similarity  linear CKA against base B of base A, every trained AnB and every trained BnB (one heatmap)
  probe       a linear probe of base A's frozen layers on task B, beside the trained AnB / AnB+ curves.
A tree without weights (e.g. the paper's logs alone) gives no figure and a line saying why.
"""
from pathlib import Path

from . import activations, probe, similarity
from ..errors import XferError
from ..nets import registry

SIMILARITY_IMAGES = 500
PROBE_TRAIN, PROBE_VALID = 600, 400  # a few hundred: the probe's fits are most of this step's time


def is_trained(folder) -> bool:
    try:
        activations.weights_of(folder)
        return True
    except XferError:
        return False


def choose(results, split=None) -> "dict | None":
    """{"A", "B": base names, "AnB", "BnB": transfer names by n} of the first split (or `split`) whose two bases
    are trained, with the trained transfers onto B; None when no split has both bases trained."""
    nets = activations.described(results)
    bases = {(net.split, registry.trained_half(net)): folder for net, folder in nets
             if net.family == "base" and net.split in registry.SPLITS}
    for s in sorted({key[0] for key in bases}) if split is None else [str(split)]:
        a, b = bases.get((s, "A")), bases.get((s, "B"))
        if not (a and b and is_trained(a) and is_trained(b)):
            continue
        onto_b = {family: [folder.name for net, folder in sorted(nets, key=lambda pair: pair[0].n or 0)
                           if net.family == family and net.base == base.name and is_trained(folder)]
                  for family, base in (("transfer", a), ("selffer", b))}
        return {"A": a.name, "B": b.name, "AnB": onto_b["transfer"], "BnB": onto_b["selffer"]}
    return None


def task_of(name) -> str:
    """The task a net trains on: its train dataset without `_train` (half0B_train -> half0B)."""
    return registry.describe(name).train_data.removesuffix("_train")


def draw_all(results, out_dir, split=None, log=None) -> list:
    """Both figures (and their numbers) of the tree into out_dir; the PNG and PDF paths written."""
    log = log or (lambda line: None)
    results, out_dir = Path(results), Path(out_dir)
    chosen = choose(results, split)
    if chosen is None:
        log(f"layer by layer: skipped, no split of {results} has both base nets trained (final snapshots)")
        return []
    folders = [results / name for name in [chosen["B"], chosen["A"]] + chosen["AnB"] + chosen["BnB"]]
    result = similarity.compare(folders, count=SIMILARITY_IMAGES)
    written = similarity.write(result, out_dir / f"similarity_{chosen['B']}")
    task = task_of(chosen["B"])
    try:
        train_db, valid_db = probe.dataset_databases(activations.data_dir_of(results / chosen["A"]), task)
    except XferError as exc:
        log(f"layer by layer: no probe of {chosen['A']} on {task}: {exc}")
        return [p for p in written if p.suffix in (".png", ".pdf")]
    found = probe.probe(results / chosen["A"], train_db, valid_db, train_count=PROBE_TRAIN, valid_count=PROBE_VALID)
    families = probe.trained_families(results, chosen["A"], task)
    written += probe.write(found, families, out_dir / f"probe_{chosen['A']}_{task}")
    return [p for p in written if p.suffix in (".png", ".pdf")]
