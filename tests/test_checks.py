"""Bad input refused before Caffe starts (xfer/run/checks.py, xfer/data/listio.py), on real Caffe and real LMDBs:
labels that reach a net's outputs, list paths that leave the image root, stale init weights, a hand-started Caffe."""
import json
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import TINY_IMAGES_PER_CLASS, TINY_OVERRIDES, write_tiny_images
from helpers import xfer
from xfer import caffeenv
from xfer.errors import XferError
from xfer.logs import tail
from xfer.nets import layout, registry, render
from xfer.run import checks, netdir, surgery, train

pytestmark = pytest.mark.caffe
MINI = ("--suite", "mini")
XFER = (sys.executable, "-m", "xfer.cli")


def tiny_lists(data_dir, bad=None):
    """whole_train / whole_valid lists of the tiny images; bad = {dataset: (line, label)} puts a label on a line."""
    for name in ("whole_train", "whole_valid"):
        lines = [f"c{label}/i{i}.png {label}\n" for label in range(10) for i in range(TINY_IMAGES_PER_CLASS)]
        if bad and name in bad:
            line, label = bad[name]
            lines[line - 1] = f"{lines[line - 1].rsplit(' ', 1)[0]} {label}\n"
        (data_dir / name).mkdir(parents=True, exist_ok=True)
        (data_dir / name / "files.txt").write_text("".join(lines))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("check-images")
    write_tiny_images(root)
    return root


def render_netbase(results, data_dir, shared=False):
    render.render([registry.get("netbase", "mini")], results, data_dir, backend="lmdb", overrides=TINY_OVERRIDES,
                  shared_images=shared)
    return results / "netbase"


def test_training_labels_beyond_the_outputs_are_refused_by_train_and_run(tmp_path, images):
    data = tmp_path / "data"
    tiny_lists(data, bad={"whole_train": (80, 10)})  # the last line: label 10 for a 10-output net
    built = xfer("db", "--data-dir", str(data), "--images", str(images), "--resize", "28", "--gray", "--jobs", "1")
    assert built.returncode == 0, built.stderr
    record = json.loads((data / "whole_train" / "db.json").read_text())["labels"]
    assert record == {"min": 0, "max": 10, "classes": 11, "min_line": 1, "max_line": 80}
    folder = render_netbase(tmp_path / "results", data)
    expected = (f"{data}/whole_train/files.txt:80: label 10 is out of range for net netbase: its fc8 has 10 outputs "
                "(labels 0..9)")
    for command in (("train", "netbase", "--cpu"), ("run", "netbase", "--cpu"),
                    ("run", "netbase", "--backend", "slurm", "--cpu")):
        refused = xfer(*command, *MINI, "--results", str(tmp_path / "results"))
        assert refused.returncode == 2 and expected in refused.stderr, refused.stderr
        assert f"xfer db --data-dir {data} --force whole_train" in refused.stderr
    assert not tail.log_files(folder) and not (folder / layout.SLURM_RECORD).exists()  # nothing started or submitted


def test_validation_labels_are_checked_in_the_shared_image_mode_too(tmp_path, images):
    data = tmp_path / "data"
    tiny_lists(data, bad={"whole_valid": (3, 12)})
    built = xfer("db", "--data-dir", str(data), "--images", str(images), "--resize", "28", "--gray", "--jobs", "1",
                 "--shared-images")
    assert built.returncode == 0, built.stderr
    assert json.loads((data / "whole_valid" / "db.json").read_text())["labels"]["max_line"] == 3
    folder = render_netbase(tmp_path / "results", data, shared=True)
    refused = xfer("train", "netbase", *MINI, "--results", str(tmp_path / "results"), "--cpu")
    assert refused.returncode == 2
    assert f"{data}/whole_valid/files.txt:3: label 12 is out of range for net netbase" in refused.stderr
    assert not tail.log_files(folder)


def test_a_db_json_without_the_label_record_falls_back_to_the_list(tmp_path, images):
    """Databases built before the record existed: the list itself is read (once per version of it)."""
    data = tmp_path / "data"
    tiny_lists(data)
    assert xfer("db", "--data-dir", str(data), "--images", str(images), "--resize", "28", "--gray",
                "--jobs", "1").returncode == 0
    folder = render_netbase(tmp_path / "results", data)
    net = registry.get("netbase", "mini")
    checks.check_labels(net, folder)  # labels 0..9, 10 outputs: accepted
    for name in ("whole_train", "whole_valid"):
        path = data / name / "db.json"
        path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "labels"}))
    tiny_lists(data, bad={"whole_valid": (5, 10)})  # the list changed after the build
    with pytest.raises(XferError, match="label 10 is out of range") as err:
        checks.check_labels(net, folder)
    assert (err.value.path, err.value.line) == (data / "whole_valid" / "files.txt", 5)
    shutil.rmtree(data / "whole_train" / "lmdb")
    with pytest.raises(XferError, match="the data of net netbase is not there: imagenet_train_lmdb -> ") as err:
        checks.check_labels(net, folder)
    assert f"xfer db --data-dir {data} whole_train" in str(err.value)


@pytest.mark.parametrize("bad", ["../val/c1/i1.png", "/etc/c1/i1.png", "c1/../../val/c1/i1.png"])
def test_paths_leaving_the_image_root_are_refused_by_every_list_stage(tmp_path, images, bad):
    data = tmp_path / "data"
    tiny_lists(data)
    lines = (data / "whole_train" / "files.txt").read_text().splitlines(keepends=True)
    lines[6] = f"{bad} 0\n"
    (data / "whole_train" / "files.txt").write_text("".join(lines))
    where = f"{data}/whole_train/files.txt:7: image path {bad!r}"
    db_args = ("db", "--data-dir", str(data), "--images", str(images), "--resize", "28", "--gray", "--jobs", "1")
    for args in (db_args, db_args + ("--shared-images",), ("splits", "--data-dir", str(data), "--no-natman")):
        refused = xfer(*args)
        assert refused.returncode == 2 and where in refused.stderr, (args, refused.stderr)
        assert ("is absolute" if bad.startswith("/") else "leaves the image root") in refused.stderr
    assert not list(data.glob("*/lmdb")) and not (data / "_images").exists() and not (data / "half0A_train").exists()

    (tmp_path / "synsets.txt").write_text("".join(f"c{c}\n" for c in range(10)))
    copied = xfer("imagenet-lists", "--data-dir", str(tmp_path / "copy"), "--train", str(images / "train"),
                  "--train-list", str(data / "whole_train" / "files.txt"), "--synsets", str(tmp_path / "synsets.txt"))
    assert copied.returncode == 2 and where in copied.stderr
    assert not (tmp_path / "copy" / "whole_train").exists()


def sha(path):
    return surgery.sha256_file(path)


def retrain(out, name, tiny_render, lr_factor):
    """Train a net again from scratch with another learning rate (the kit's solvers fix the random seed, so the
    same recipe would give the same weights), as a user who deleted its snapshots to change the recipe would."""
    tiny_render(out, [name], force=True, base_lr=TINY_OVERRIDES["base_lr"] * lr_factor)
    for path in list((out / name).glob("*_iter_*")) + tail.log_files(out / name):
        path.unlink()
    (out / name / layout.STATUS).unlink()
    done = xfer("train", name, *MINI, "--results", str(out), "--cpu")
    assert done.returncode == 0, done.stderr


def test_stale_init_weights_redo_surgery_or_are_refused_until_force(tmp_path, tiny_render):
    out = tiny_render(tmp_path / "results", ["half0A", "transfer0A0B_1_1", "transfer0A0B_1_2"])
    for name in ("half0A", "transfer0A0B_1_2"):
        assert xfer("train", name, *MINI, "--results", str(out), "--cpu").returncode == 0
    made = xfer("surgery", "--net", str(out / "transfer0A0B_1_1"), *MINI)
    assert made.returncode == 0, made.stderr
    stopped = out / "transfer0A0B_1_2"
    for path in stopped.glob("*_iter_24.*"):  # as if it had been stopped at iteration 16
        path.unlink()
    base = out / "half0A" / "caffe_imagenet_train_iter_24.caffemodel"
    old = sha(base)
    retrain(out, "half0A", tiny_render, 2)
    new = sha(base)
    assert new != old

    redo = xfer("train", "transfer0A0B_1_1", *MINI, "--results", str(out), "--cpu")
    assert redo.returncode == 0, redo.stderr
    assert "its base changed since its surgery" in redo.stdout and "doing the surgery again" in redo.stdout
    manifest = json.loads((out / "transfer0A0B_1_1" / "init.manifest.json").read_text())
    assert manifest["base_sha256"] == new and "frozen layers unchanged" in redo.stdout

    for command in ("train", "run"):
        refused = xfer(command, "transfer0A0B_1_2", *MINI, "--results", str(out), "--cpu")
        assert refused.returncode == 2, refused.stderr
        assert (f"net transfer0A0B_1_2 was started from another version of its base half0A: init.caffemodel was "
                f"made from base sha256 {old}, {base} now has sha256 {new}") in refused.stderr
        assert "`xfer train transfer0A0B_1_2 --suite mini --force` restarts it from the new base" in refused.stderr
    assert len(tail.log_files(stopped)) == 1  # Caffe was not started again

    forced = xfer("train", "transfer0A0B_1_2", *MINI, "--results", str(out), "--cpu", "--force")
    assert forced.returncode == 0, forced.stderr
    aside = list(stopped.glob("superseded_*"))
    assert len(aside) == 1 and {p.name for p in aside[0].glob("*_iter_*.caffemodel")} == {
        "caffe_imagenet_train_iter_8.caffemodel", "caffe_imagenet_train_iter_16.caffemodel"}
    assert json.loads((stopped / "init.manifest.json").read_text())["base_sha256"] == new
    status = json.loads((stopped / layout.STATUS).read_text())
    assert status["state"] == "finished" and status["verify"]["ok"] is True
    assert status["command"][-2:] == ["-weights", "init.caffemodel"]  # started again, not resumed

    retrain(out, "half0A", tiny_render, 3)  # a third version: transfer0A0B_1_1 is now finished from an older base
    kept = xfer("train", "transfer0A0B_1_1", *MINI, "--results", str(out), "--cpu")
    assert kept.returncode == 0 and "finished already" in kept.stdout
    assert "transfer0A0B_1_1: finished, but from an older version of its base half0A" in kept.stdout
    restarted = xfer("train", "transfer0A0B_1_1", *MINI, "--results", str(out), "--cpu", "--force")
    assert restarted.returncode == 0 and "frozen layers unchanged" in restarted.stdout, restarted.stderr
    assert len(list((out / "transfer0A0B_1_1").glob("superseded_*/*.log"))) == 1
    assert len(tail.log_files(out / "transfer0A0B_1_1")) == 1


def test_a_caffe_train_started_by_hand_is_not_doubled(tmp_path, tiny_render):
    out = tiny_render(tmp_path / "results", ["half0B"], max_iter=100000, snapshot=0, test_interval=100000)
    folder = out / "half0B"
    solver = train.solver_for(folder, "cpu")
    with open(tmp_path / "by-hand.log", "wb") as log:
        hand = subprocess.Popen([caffeenv.tool("caffe"), "train", "-solver", solver], cwd=folder, stdout=log,
                                stderr=subprocess.STDOUT, env=train.caffe_env())
    try:
        deadline = time.monotonic() + 60
        while not checks.caffe_trainings(folder) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid, _ in checks.caffe_trainings(folder)] == [hand.pid]
        assert checks.caffe_trainings(out) == []  # another folder: not counted
        for command in ("train", "run"):
            refused = xfer(command, "half0B", *MINI, "--results", str(out), "--cpu")
            assert refused.returncode == 2
            assert (f"a `caffe train` not started by xfer is running in this folder (pid {hand.pid}: "
                    f"{caffeenv.tool('caffe')} train -solver {solver})") in refused.stderr
            assert f"kill -INT {hand.pid}" in refused.stderr
            assert "`xfer train half0B --suite mini` again" in refused.stderr
        assert not tail.log_files(folder) and hand.poll() is None
        shown = xfer("status", "half0B", *MINI, "--results", str(out), "--json")
        row = json.loads(shown.stdout)[0]
        assert (row["state"], row["job"]) == ("running", f"by hand (pid {hand.pid})"), shown.stdout
    finally:
        hand.send_signal(signal.SIGINT)
        hand.wait(timeout=60)

    # the Caffe that `xfer train` starts holds the net's lock file open: it is not taken for one started by hand
    trainer = subprocess.Popen([*XFER, "train", "half0B", *MINI, "--results", str(out), "--cpu"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not any("Solver scaffolding done" in log.read_text() for log in tail.log_files(folder)):
            assert time.monotonic() < deadline and trainer.poll() is None, "xfer train did not start Caffe"
            time.sleep(0.05)
        assert netdir.lock_holder(folder) and checks.caffe_trainings(folder) == []
    finally:
        trainer.send_signal(signal.SIGINT)
        trainer.wait(timeout=60)
