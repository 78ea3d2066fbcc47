"""`xfer render --set KEY=VALUE`: checked keys and values, recorded in the folder, kept by a plain re-render and by
--check, dropped by --reset; train, status and summary follow the rendered files (real Caffe on the tiny data)."""
import dataclasses
import json

import pytest

from helpers import xfer
from xfer.errors import XferError
from xfer.nets import overrides, record, registry

TINY_SET = ["max_iter=12", "snapshot=12", "test_interval=6", "test_iter=2", "display=2", "base_lr=0.001",
            "train_batch=8", "val_batch=10", "test_initialization=true"]


def set_args(items):
    return [arg for item in items for arg in ("--set", item)]


def test_values_are_parsed_and_checked():
    parsed = overrides.parse_assignments(["max_iter=200", "base_lr=0.005", "crop=0", "test_initialization=no",
                                          "lr_policy=fixed", "snapshot_prefix=short_run"])
    assert parsed == {"max_iter": 200, "base_lr": 0.005, "crop": 0, "test_initialization": False,
                      "lr_policy": "fixed", "snapshot_prefix": "short_run"}
    # the CLI takes the solver schedule's fields and the data layers' and upper layers' keys, nothing else
    schedule = {f.name for f in dataclasses.fields(registry.Schedule)}
    assert set(overrides.KEYS) == schedule | set(overrides.DATA_KEYS + overrides.SHAPE_KEYS) | {overrides.SCALE_KEY}


@pytest.mark.parametrize("item, words", [
    ("max_iters=3", ["max_iters: unknown key", "max_iter, snapshot"]),
    ("max_iter=-3", ["max_iter=-3: must be 1 or more", "max_iter takes an integer >= 1"]),
    ("max_iter=lots", ["max_iter=lots: must be an integer >= 1"]),
    ("base_lr=0", ["base_lr=0: must be a number above 0"]),
    ("lr_policy=inv", ["lr_policy=inv: must be one of fixed, step, exp"]),
    ("momentum=1.5", ["momentum=1.5: must be between 0 and 1"]),
    ("snapshot_prefix=a/b", ["snapshot_prefix=a/b: must be a file name stem"]),
    ("max_iter", ["expected KEY=VALUE"]),
])
def test_a_bad_key_or_value_is_one_clear_error(item, words):
    with pytest.raises(XferError) as err:
        overrides.parse_assignments([item])
    for word in words:
        assert word in str(err.value), str(err.value)
    assert "allowed keys:" in str(err.value)


def test_crop_larger_than_the_images_is_refused(tmp_path):
    proc = xfer("render", "--suite", "mini", "--out", str(tmp_path / "r"), "--data-dir", str(tmp_path / "d"),
                "half0A", "--set", "crop=30")
    assert proc.returncode == 2 and "crop=30: larger than the 28-pixel images of mini nets" in proc.stderr
    assert not (tmp_path / "r" / "half0A").exists()


def test_set_is_recorded_kept_checked_and_reset(tmp_path):
    out, data = tmp_path / "r", tmp_path / "d"
    common = ["--out", str(out), "--data-dir", str(data), "half0A", "transfer0A0B_1_3"]
    proc = xfer("render", *common, *set_args(["max_iter=1000", "crop=199", "train_batch=32", "stepsize=400"]))
    assert proc.returncode == 0, proc.stderr
    assert "overrides: crop=199 max_iter=1000 stepsize=400 train_batch=32" in proc.stdout
    folder = out / "transfer0A0B_1_3"
    solver, train = (folder / "imagenet_solver.prototxt").read_text(), (folder / "imagenet_train.prototxt").read_text()
    assert "max_iter: 1000\n" in solver and "stepsize: 400\n" in solver and "base_lr: 0.01\n" in solver
    assert "crop_size: 199" in train and "batch_size: 32" in train
    assert record.read_record(folder)["overrides"] == {"crop": 199, "max_iter": 1000, "stepsize": 400,
                                                       "train_batch": 32}
    assert xfer("render", *common).returncode == 0  # a plain re-render keeps the recorded schedule
    assert (folder / "imagenet_solver.prototxt").read_text() == solver
    check = xfer("render", "--check", *common)
    assert check.returncode == 0 and "2 nets checked, 0 problem(s)" in check.stdout
    status = json.loads(xfer("status", "--results", str(out), "--json", "half0A").stdout)
    assert status[0]["max_iter"] == 1000  # from the rendered solver, not the registry's 450000

    (folder / "imagenet_solver.prototxt").write_text(solver.replace("max_iter: 1000", "max_iter: 999"))
    check = xfer("render", "--check", *common)
    assert check.returncode == 1 and f"{folder / 'imagenet_solver.prototxt'}: differs" in check.stdout
    (folder / "imagenet_solver.prototxt").write_text(solver)

    reset = xfer("render", "--reset", *common)
    assert reset.returncode == 0, reset.stderr
    assert "max_iter: 450000\n" in (folder / "imagenet_solver.prototxt").read_text()
    assert record.read_record(folder)["overrides"] == {}
    assert xfer("render", "--check", *common).returncode == 0


@pytest.mark.caffe
def test_train_status_and_summary_follow_the_rendered_schedule(tmp_path, tiny_data_dir):
    out = tmp_path / "results"
    proc = xfer("render", "--suite", "mini", "--out", str(out), "--data-dir", str(tiny_data_dir), "half0A",
                *set_args(TINY_SET))
    assert proc.returncode == 0, proc.stderr
    trained = xfer("train", "half0A", "--results", str(out), "--cpu", timeout=300)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "finished at iteration 12" in trained.stdout
    assert (out / "half0A" / "caffe_imagenet_train_iter_12.caffemodel").is_file()
    rows = json.loads(xfer("status", "--results", str(out), "--json", "half0A").stdout)
    assert (rows[0]["state"], rows[0]["iteration"], rows[0]["max_iter"]) == ("finished", 12, 12)
    numbers = json.loads(xfer("summary", "--results", str(out), "--format", "json", "half0A").stdout)
    assert numbers["half0A"]["last_iter"] == 12 and numbers["half0A"]["tests"] == 3  # tests at 0, 6 and 12
    again = xfer("run", "--results", str(out), "--cpu", "half0A")
    assert again.returncode == 0 and "started" not in again.stdout  # finished by the rendered max_iter
