"""The original README's workflow, literally: `./caffe.bin train` run by hand in a results folder, logs written with
`> log_file 2>&1`, a transfer started from `-weights basenet/caffe_imagenet_train_iter_<max_iter>` (no extension);
then summary, plot and status see both nets. And log discovery by content, whatever the file names."""
import gzip
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import START, run_2014, write, xfer
from xfer.logs import discover, parser, tail
from xfer.nets import registry
from xfer.run import netdir, runner

MAX_ITER = 24  # conftest's TINY_OVERRIDES
BASE, TRANSFER = "half0A", "transfer0A0B_1_2"


def by_hand(folder, command, tmp_path):
    """A shell command in a net folder, in the environment of a user who never imported pycaffe (no GLOG_
    settings: Caffe's own defaults, INFO lines on stderr); glog's extra files go to a temp dir, not /tmp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLOG_")}
    (tmp_path / "glog").mkdir(exist_ok=True)
    env["GLOG_log_dir"] = str(tmp_path / "glog")
    return subprocess.run(["bash", "-c", f"cd {shlex.quote(str(folder))} && {command}"], env=env,
                          capture_output=True, text=True, timeout=300)


def blob_data(caffe_pb2, path, layer):
    net = caffe_pb2.NetParameter()
    net.ParseFromString(Path(path).read_bytes())
    found = [item for item in net.layer if item.name == layer]
    return list(found[0].blobs[0].data)


@pytest.mark.caffe
def test_original_readme_by_hand_then_summary_plot_status(tmp_path, tiny_render, caffe):
    out = tiny_render(tmp_path / "results", [BASE, TRANSFER])
    caffe_bin = Path(sys.prefix) / "bin" / "caffe.bin"
    alias = f"caffe_imagenet_train_iter_{MAX_ITER}"
    assert os.readlink(out / BASE / alias) == alias + ".caffemodel"  # made by render, dangling until the end

    # README: cd results/half0A; cp /path/to/caffe/build/tools/caffe.bin .; ./caffe.bin train -solver ...
    base = by_hand(out / BASE, f"cp {shlex.quote(str(caffe_bin))} . && "
                   "./caffe.bin train -solver imagenet_solver.prototxt > log_file 2>&1", tmp_path)
    assert base.returncode == 0, (out / BASE / "log_file").read_text()[-2000:]
    assert (out / BASE / alias).resolve() == (out / BASE / f"{alias}.caffemodel").resolve()
    assert (out / BASE / alias).is_file()

    transfer = by_hand(out / TRANSFER, f"cp {shlex.quote(str(caffe_bin))} . && ./caffe.bin train -solver "
                       f"imagenet_solver.prototxt -weights basenet/{alias} > log_file 2>&1", tmp_path)
    log = (out / TRANSFER / "log_file").read_text()
    assert transfer.returncode == 0, log[-2000:]
    assert f"Finetuning from basenet/{alias}\n" in log and "Optimization Done." in log
    assert "Ignoring source layer conv3" in log and "Ignoring source layer conv2" not in log  # fresh: renamed
    # the frozen conv1 came from the base through the alias and stayed as it was (lr_mult 0)
    pb2 = caffe.proto.caffe_pb2
    assert blob_data(pb2, out / BASE / f"{alias}.caffemodel", "conv1") == \
        blob_data(pb2, out / TRANSFER / f"{alias}.caffemodel", "conv1")

    # neither the alias nor the copied binary is taken for a snapshot or a log; the runner sees both nets finished
    for name in (BASE, TRANSFER):
        assert [p.name for p in tail.log_files(out / name)] == ["log_file"]
        assert [it for it, _ in netdir.snapshots(out / name)] == [8, 16, 24]
    todo, done = runner.plan([BASE, TRANSFER], "mini", out)
    assert todo == [] and [n.name for n in done] == [BASE, TRANSFER]

    summary = xfer("summary", "--results", str(out), "--format", "json")
    assert summary.returncode == 0, summary.stderr
    rows = json.loads(summary.stdout)
    assert set(rows) == {BASE, TRANSFER}
    assert all(rows[n]["last_iter"] == MAX_ITER and rows[n]["tests"] == 3 and 0 <= rows[n]["top1"] <= 1 for n in rows)

    plot = xfer("plot", "--results", str(out), "--out", str(tmp_path / "plots"))
    assert plot.returncode == 0, plot.stderr
    assert list((tmp_path / "plots").glob("*.png"))

    shown = xfer("status", "--suite", "mini", "--results", str(out), "--json", BASE, TRANSFER)
    assert shown.returncode == 0, shown.stderr
    states = {row["net"]: row for row in json.loads(shown.stdout)}
    for name in (BASE, TRANSFER):
        assert states[name]["state"] == "finished" and states[name]["iteration"] == MAX_ITER
        last_test = parser.parse_net_dir(out / name).tests["accuracy"].value[-1]
        assert states[name]["accuracy"] == pytest.approx(float(last_test))


def caffe_log():
    """A short 2014-style log: iterations 0..2000, tests at 0, 1000, 2000 giving accuracy 0.25."""
    return run_2014(START, 0, 2000, lambda it: "2.5", acc=lambda it: "0.25")


def test_logs_found_by_content_whatever_their_names(tmp_path):
    folder = tmp_path / "half0A"
    text = caffe_log()
    preamble = "".join(f"module load {i}\n" for i in range(200))  # a scheduler's output before Caffe starts
    logs = {"log_file": text, "train.log": text, "slurm-123.out": preamble + text, "job.o12345": text,
            "job.e12345.gz": text, "nohup.out.gz": text, "140403_063910_half0A.o227963.gz": "",
            "261203_090000_half0A.log": ""}  # timestamped names (the kit's, the paper's): logs even when empty
    others = {"notes.txt": "not a log\n" * 100, "pip.log": "Collecting numpy\n", "slurm-124.out": "srun: error\n",
              "imagenet_solver.prototxt": text, "xfer_status.json": text, ".xfer_slurm-5.out": text,
              "caffe_imagenet_train_iter_450000": text, "caffe.bin": text}
    for name, body in {**logs, **others}.items():
        write(folder / name, body, gz=name.endswith(".gz"))
    (folder / "garbled.gz").write_bytes(b"\x1f\x8b" + os.urandom(200))
    (folder / "far.out").write_text("x" * (discover.SNIFF_BYTES + 10) + "\n" + text)  # past the sniffed head
    os.symlink("caffe_imagenet_train_iter_24.caffemodel", folder / "caffe_imagenet_train_iter_24")  # dangling
    os.symlink("..", folder / "basenet")

    assert [p.name for p in parser.find_logs(folder)] == sorted(logs)
    assert gzip.decompress((folder / "job.e12345.gz").read_bytes()).decode() == text
    netlog = parser.parse_net_dir(folder, cache=False)
    assert netlog.problems() == [] and netlog.tests["accuracy"].value[-1] == pytest.approx(0.25)


def test_newest_log_goes_by_time_not_name(tmp_path):
    folder = tmp_path / "net"
    old = write(folder / "zz_old.log", caffe_log())
    new = write(folder / "log_file", caffe_log())
    os.utime(old, (1_000_000_000, 1_000_000_000))
    assert discover.newest_log(folder) == new and discover.newest_log(tmp_path / "missing") is None


def test_rerender_with_another_max_iter_moves_the_alias(tmp_path):
    from xfer.nets import render
    net = registry.get(BASE, "mini")
    folder = tmp_path / BASE
    render.render([net], tmp_path, tmp_path / "data", overrides={"max_iter": 30})
    assert os.readlink(folder / "caffe_imagenet_train_iter_30") == "caffe_imagenet_train_iter_30.caffemodel"
    render.render([net], tmp_path, tmp_path / "data", overrides={"max_iter": 40}, force=True)
    assert not (folder / "caffe_imagenet_train_iter_30").is_symlink()
    assert (folder / "caffe_imagenet_train_iter_40").is_symlink()
    # a 2014 snapshot of that very name (copied from the original tree) is kept, not replaced by a link
    (folder / "caffe_imagenet_train_iter_40").unlink()
    (folder / "caffe_imagenet_train_iter_40").write_bytes(b"2014 weights")
    render.render([net], tmp_path, tmp_path / "data", overrides={"max_iter": 40})
    assert (folder / "caffe_imagenet_train_iter_40").read_bytes() == b"2014 weights"


def test_train_links_the_alias_in_a_folder_rendered_before_it(tmp_path):
    from xfer.nets import render
    net = registry.get(BASE, "mini")
    render.render([net], tmp_path, tmp_path / "data", overrides={"max_iter": 30})
    alias = tmp_path / BASE / "caffe_imagenet_train_iter_30"
    alias.unlink()
    netdir.link_final_alias(net, tmp_path)  # what `xfer train` does when a net finishes (or had finished)
    assert os.readlink(alias) == "caffe_imagenet_train_iter_30.caffemodel"
    netdir.link_final_alias(net, tmp_path)  # again: nothing to do
    alias.unlink()
    alias.write_bytes(b"2014 weights")
    netdir.link_final_alias(net, tmp_path)
    assert alias.read_bytes() == b"2014 weights"


@pytest.mark.caffe
def test_weights_by_the_2014_name_of_any_snapshot(tmp_path, tiny_render, caffe, monkeypatch):
    """Kit patch 0004: `-weights basenet/caffe_imagenet_train_iter_N` with no link of that name (N short of max_iter,
    as when a user shortens a schedule by hand) reads `…_iter_N.caffemodel`; a name that has neither still fails,
    naming the path."""
    out = tiny_render(tmp_path / "results", [BASE, TRANSFER])
    caffe_bin = shlex.quote(str(Path(sys.prefix) / "bin" / "caffe"))
    base = by_hand(out / BASE, f"{caffe_bin} train -solver imagenet_solver.prototxt > log_file 2>&1", tmp_path)
    assert base.returncode == 0, (out / BASE / "log_file").read_text()[-2000:]
    early = "caffe_imagenet_train_iter_16"
    assert not (out / BASE / early).exists() and (out / BASE / f"{early}.caffemodel").is_file()

    transfer = by_hand(out / TRANSFER, f"{caffe_bin} train -solver imagenet_solver.prototxt "
                       f"-weights basenet/{early} > log_file 2>&1", tmp_path)
    log = (out / TRANSFER / "log_file").read_text()
    assert transfer.returncode == 0, log[-2000:]
    assert f"basenet/{early} does not exist: reading basenet/{early}.caffemodel" in log
    pb2 = caffe.proto.caffe_pb2
    final = out / TRANSFER / f"caffe_imagenet_train_iter_{MAX_ITER}.caffemodel"
    assert blob_data(pb2, out / BASE / f"{early}.caffemodel", "conv1") == blob_data(pb2, final, "conv1")

    # pycaffe's Net.copy_from is the same Net::CopyTrainedLayersFrom (its constructor checks the path itself first)
    monkeypatch.chdir(out / BASE)  # the rendered data sources are relative to the net folder
    net = caffe.Net("imagenet_val.prototxt", caffe.TEST)
    net.copy_from(early)
    assert list(net.params["conv1"][0].data.ravel()) == pytest.approx(
        blob_data(pb2, out / BASE / f"{early}.caffemodel", "conv1"))

    missing = by_hand(out / TRANSFER, f"{caffe_bin} train -solver imagenet_solver.prototxt "
                      "-weights basenet/caffe_imagenet_train_iter_999 > log_missing 2>&1", tmp_path)
    assert missing.returncode != 0
    assert "Couldn't open basenet/caffe_imagenet_train_iter_999" in (out / TRANSFER / "log_missing").read_text()
