"""`xfer rehearse` as documented (the default graph, the real CaffeNet at 227 on the CPU), then what it left checked
from outside: the tree, the mean links, the frozen blobs, the record; and its checks shown able to fail."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xfer.data import wordnet
from xfer.nets import registry
from xfer.studies import rehearsal_checks, rehearse

pytestmark = pytest.mark.caffe
FAMILIES = {"base", "transfer", "transfer-ft", "natman-base", "natman-transfer", "nolearn", "netbase", "reduced"}


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    out = tmp_path_factory.mktemp("rehearsal")
    proc = subprocess.run([sys.executable, "-m", "xfer.cli", "rehearse", "--out", str(out)], capture_output=True,
                          text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return out, proc


def test_default_graph_covers_every_kind_of_paper_net():
    families = {registry.get(name).family for name in rehearse.with_bases(rehearse.NETS)}
    assert families == FAMILIES


def test_every_stage_ran_and_every_check_passed(rehearsal):
    out, proc = rehearsal
    record = json.loads((out / "rehearse.json").read_text())
    assert record["nets"] == list(rehearse.NETS)
    assert [s["stage"] for s in record["stages"]] == ["images", "lists", "splits", "db", "render", "run", "report",
                                                     "checks"]
    checks = {c["check"]: c for c in record["checks"]}
    assert len(checks) == 8 and all(c["ok"] for c in checks.values()), checks
    for stage in record["stages"]:
        assert re.search(rf"^\[\d\] {stage['stage']}: ", proc.stdout, re.M)  # a progress line per stage
        assert re.search(rf"^{stage['stage']}\s+\d+\.\d  ", proc.stdout, re.M)  # and a row of the final table
    assert "every check passed" in proc.stdout
    for name in rehearse.NETS:  # the real runs: a final snapshot of the full-size net in each folder
        model = out / "results" / name / "caffe_imagenet_train_iter_6.caffemodel"
        assert model.stat().st_size > 200e6, name  # CaffeNet with fc6/fc7 of 4096 and fc8 of 1000: ~244 MB


def test_tree_is_imagenet_shaped(rehearsal):
    from PIL import Image
    out, _ = rehearsal
    classes = sorted(p.name for p in (out / "images" / "train").iterdir())
    assert len(classes) == 1000 and all(wordnet.is_wnid(c) for c in classes)
    assert sum(wordnet.is_manmade(c) for c in classes) == 551
    val = sorted(p.name for p in (out / "images" / "val").iterdir())
    assert val[0] == "ILSVRC2012_val_00000001.JPEG" and len(val) == 1000
    labels = (out / "images" / "val.txt").read_text().splitlines()
    assert [line.split()[0] for line in labels] == val and {int(line.split()[1]) for line in labels} == set(range(1000))
    sizes = {Image.open(p).size for p in sorted((out / "images" / "train").glob("*/*.JPEG"))[:40]}
    assert len(sizes) >= 4 and min(min(s) for s in sizes) < 227  # varied, some below the crop (db resizes)


def test_means_follow_the_rule_on_disk(rehearsal):
    out, _ = rehearsal
    want = {"half0A": "half0A_train", "transfer0A0B_1_3": "half0A_train", "transfer-ft0A0B_1_3": "half0A_train",
            "transfernatmanAB_1_3": "halfnatmanA_train", "netbase": "whole_train", "nolearn_1_3": "whole_train",
            "reduced-0001": "reduced0001_train"}
    for name, dataset in want.items():
        target = Path(os.path.realpath(out / "results" / name / "imagenet_mean.binaryproto"))
        assert target == (out / "data" / dataset / "mean.binaryproto").resolve(), name
    assert (out / "data" / "half0A_train" / "mean.binaryproto").read_bytes() != (
        out / "data" / "whole_train" / "mean.binaryproto").read_bytes()


def test_frozen_blobs_equal_the_base_and_trained_ones_moved(rehearsal, caffe):
    out, _ = rehearsal
    pb2 = caffe.proto.caffe_pb2

    def blobs(path):
        net = pb2.NetParameter()
        net.ParseFromString(Path(path).read_bytes())
        return {layer.name: [np.array(b.data) for b in layer.blobs] for layer in net.layer if layer.blobs}

    base = blobs(out / "results" / "half0A" / "caffe_imagenet_train_iter_6.caffemodel")
    for name, tuned in (("transfer0A0B_1_3", False), ("transfer-ft0A0B_1_3", True)):
        net = blobs(out / "results" / name / "caffe_imagenet_train_iter_6.caffemodel")
        for layer in ("conv1", "conv2", "conv3"):
            same = all(np.array_equal(a, b) for a, b in zip(net[layer], base[layer]))
            assert same != tuned, (name, layer)  # frozen: bit-identical; fine-tuned: moved
        assert "conv4-new" in net and "conv4" not in net


def test_checks_can_fail(rehearsal):
    out, _ = rehearsal
    nets = [registry.get(name) for name in rehearse.NETS]
    link = out / "results" / "transfer0A0B_1_3" / "imagenet_mean.binaryproto"
    target = os.readlink(link)
    try:
        os.unlink(link)
        os.symlink(target.replace("half0A_train", "half0B_train"), link)
        name, ok, detail = rehearsal_checks.check_means(nets, out / "results", out / "data")
        assert not ok and "transfer0A0B_1_3 uses half0B_train, should use half0A_train" in detail
    finally:
        os.unlink(link)
        os.symlink(target, link)
    again = out / "data-again" / "half1B_train" / "files.txt"
    again.write_text(again.read_text() + again.read_text().splitlines()[0] + "\n")
    name, ok, detail = rehearsal_checks.check_lists_stable(out / "data", out / "data-again")
    assert not ok and "half1B_train/files.txt" in detail
