"""The checks `xfer rehearse` runs after the real stages: each returns (name, ok, detail) and reads what the stages
left on disk (folders, links, snapshots, lists) or printed (status, summary, plot), never the registry's promises
alone: a check that only re-read the registry could not fail.
"""
import os
from pathlib import Path

from ..data import wordnet
from ..nets import check as netcheck
from ..nets import layout
from ..paths import file_digest
from ..run import surgery
from ..run.netdir import solver_schedule

LIST_FILES = ("files.txt", "idxmap.txt")


def list_digests(data_dir) -> dict:
    """{relative path: md5} of every list the list stages wrote (class names, whole and derivative lists)."""
    data_dir = Path(data_dir)
    found = {name: file_digest(data_dir / name) for name in ("synsets.txt", "synset_words.txt")
             if (data_dir / name).is_file()}
    for name in LIST_FILES:
        for path in sorted(data_dir.glob(f"*/{name}")):
            found[str(path.relative_to(data_dir))] = file_digest(path)
    return found


def check_lists_stable(data_dir, again_dir):
    first, second = list_digests(data_dir), list_digests(again_dir)
    differ = sorted(name for name in set(first) | set(second) if first.get(name) != second.get(name))
    ok = bool(first) and not differ
    detail = (f"{len(first)} lists (whole, 4 random splits, natman, reduced) have the same md5 in both runs" if ok
              else f"differ between the runs: {', '.join(differ[:6]) or 'no lists written'}")
    return "split lists stable (md5, two runs)", ok, detail


def class_count(data_dir, dataset) -> int:
    path = Path(data_dir) / dataset / "idxmap.txt"
    return sum(1 for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))


def check_natman(data_dir):
    """The natural / man-made halves hold 449 / 551 classes, and every class of A is natural by WordNet."""
    synsets = (Path(data_dir) / "synsets.txt").read_text().split()
    natural = class_count(data_dir, "halfnatmanA_train")
    made = class_count(data_dir, "halfnatmanB_train")
    by_wordnet = sum(1 for wnid in synsets if wordnet.is_manmade(wnid))
    ok = (natural, made) == (449, 551) and by_wordnet == made
    return "natman halves from WordNet", ok, f"halfnatmanA {natural} natural, halfnatmanB {made} man-made classes"


def mean_source(folder, data_dir) -> "str | None":
    """The dataset whose mean a net folder's imagenet_mean.binaryproto link reaches (None: broken or elsewhere)."""
    target = Path(os.path.realpath(Path(folder) / layout.MEAN_LINK))
    if not target.is_file() or target.parent.parent != Path(os.path.realpath(data_dir)):
        return None
    return target.parent.name


def train_source(folder) -> str:
    """The dataset a net folder trains on, from its train data link."""
    link = next(Path(folder).glob("imagenet_train_*"))
    return Path(os.path.realpath(link)).parent.name


def check_means(nets, results, data_dir):
    """The rule, from the folders alone: a net subtracts the mean of the set its first learned layers saw, its
    base's training set for a transfer net, else its own."""
    wrong, used = [], set()
    for net in nets:
        learned_on = Path(results) / (net.base or net.name)
        source, wanted = mean_source(Path(results) / net.name, data_dir), train_source(learned_on)
        used.add(source)
        if source != wanted:
            wrong.append(f"{net.name} uses {source or 'no mean'}, should use {wanted}")
    detail = "; ".join(wrong) or f"{len(nets)} nets, {len(used)} different means, each its base's or its own set's"
    return "means linked by the rule", not wrong, detail


def check_frozen(nets, results):
    """surgery.verify on every net with frozen layers: each frozen blob of the final snapshot equals its source."""
    rows, bad = [], []
    for net in (n for n in nets if n.frozen_layers()):
        report = surgery.verify(net, results)
        layers = [row["layer"] for row in report["layers"]]
        rows.append(f"{net.name} ({layers[0]}..{layers[-1]})")
        if not report["ok"]:
            bad.append(net.name)
    ok = bool(rows) and not bad
    detail = ("after training: " + ", ".join(rows)) if ok else f"CHANGED in {', '.join(bad) or '-'}"
    return "frozen layers bit-identical", ok, detail


def layer_by_name(net_param, names):
    return next(layer for layer in net_param.layer if layer.name in names)


def check_caffenet(nets, results):
    """The rendered nets are the paper's CaffeNet: 227 crops, fc8 of 1000 outputs (train and val)."""
    from .. import caffeenv  # lazy, as everywhere: protobuf classes load with the Caffe build
    pb2, wrong = caffeenv.caffe_pb2(), []
    for net in nets:
        for phase in ("train", "val"):
            path = Path(results) / net.name / (layout.TRAIN_NET if phase == "train" else layout.VAL_NET)
            param = netcheck.parse(path.read_text(), pb2.NetParameter, path)
            fc8 = layer_by_name(param, ("fc8", "fc8-new")).inner_product_param.num_output
            crop = param.layer[0].transform_param.crop_size
            if (fc8, crop) != (1000, 227):
                wrong.append(f"{path}: fc8 {fc8}, crop {crop}")
    return "real CaffeNet (crop 227, fc8 1000)", not wrong, "; ".join(wrong) or f"{2 * len(nets)} prototxts"


def check_status(nets, results, status_rows, schedule):
    """`xfer status` says finished at the rendered max_iter (the override, not the registry's 450000)."""
    states = {row["net"]: (row["state"], row["max_iter"]) for row in status_rows}
    wanted = schedule.get("max_iter")
    wrong = [f"{n.name}: {states.get(n.name)}" for n in nets
             if states.get(n.name) != ("finished", solver_schedule(Path(results) / n.name)["max_iter"])
             or states[n.name][1] != wanted]
    return "xfer status: all finished", not wrong, "; ".join(wrong) or f"{len(nets)} nets at iteration {wanted}"


def check_summary(nets, numbers, schedule):
    wrong = [n.name for n in nets
             if (numbers.get(n.name) or {}).get("last_iter") != schedule.get("max_iter")
             or not (numbers.get(n.name) or {}).get("tests")]
    detail = "; ".join(f"{n}: {numbers.get(n)}" for n in wrong) or \
        f"{len(nets)} nets with test points and last iteration {schedule.get('max_iter')}"
    return "xfer summary: every net", not wrong, detail


def check_figures(figures):
    pngs = [f for f in figures if f.endswith(".png") and Path(f).stat().st_size > 0]
    return "xfer plot: figures drawn", bool(pngs), ", ".join(Path(f).name for f in pngs) or "no figure"


def all_checks(nets, results, data_dir, again_dir, schedule, outputs) -> list:
    return [check_lists_stable(data_dir, again_dir), check_natman(data_dir), check_means(nets, results, data_dir),
            check_caffenet(nets, results), check_frozen(nets, results),
            check_status(nets, results, outputs.get("status", []), schedule),
            check_summary(nets, outputs.get("summary", {}), schedule), check_figures(outputs.get("figures", []))]
