"""`xfer run` on local CPU slots with real Caffe: the graph in order, re-runs skip finished work, Ctrl-C is safe."""
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest

from helpers import xfer as run_xfer
from xfer import caffeenv
from xfer.logs import tail
from xfer.nets import registry
from xfer.run import netdir, runner
from xfer.errors import XferError

pytestmark = pytest.mark.caffe


def xfer(*args, timeout=240):
    """`xfer ARGS`, stopped after 240 s: a hung trainer must fail the test, not stall the suite."""
    return run_xfer(*args, timeout=timeout)


def log_start(log):
    """Wall-clock time of a Caffe log's first line (glog 0.6 prefix: I20261125 19:16:03.289494)."""
    return datetime.strptime(log.read_text()[1:18], "%Y%m%d %H:%M:%S").timestamp()


def fake_finish(out, name):
    """Mark a net finished the way Caffe does: the final .caffemodel (a parseable one, with a layer of weights: a
    cut or empty file counts as unfinished) and .solverstate in its folder."""
    net = registry.get(name, "mini")
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    stem = net.final_snapshot().removesuffix(".caffemodel")
    weights = caffeenv.caffe_pb2().NetParameter()
    blob = weights.layer.add(name="conv1").blobs.add()
    blob.shape.dim.append(2)
    blob.data.extend([0.5, -0.5])
    (folder / (stem + ".caffemodel")).write_bytes(weights.SerializeToString())
    (folder / (stem + ".solverstate")).write_bytes(b"")


def test_plan_puts_unfinished_bases_first(tmp_path):
    todo, done = runner.plan(["transfer0B0A_1_2", "transfer0A0B_1_1"], "mini", tmp_path)
    assert [n.name for n in todo] == ["half0A", "half0B", "transfer0A0B_1_1", "transfer0B0A_1_2"]
    assert done == []
    fake_finish(tmp_path, "half0A")
    todo, done = runner.plan(["transfer0A0B_1_1", "half0A"], "mini", tmp_path)
    assert [n.name for n in todo] == ["transfer0A0B_1_1"] and [n.name for n in done] == ["half0A"]
    todo, _ = runner.plan(["transfer0A0B_1_1"], "mini", tmp_path)
    assert [n.name for n in todo] == ["transfer0A0B_1_1"]  # a finished base is not trained again
    with pytest.raises(XferError, match="no net of the mini suite matches"):
        runner.plan(["transfer9*"], "mini", tmp_path)


def test_every_suite_orders_bases_before_their_transfers():
    for suite in registry.suite_names():
        order = [n.name for n in runner.order_by_dependencies(registry.nets(suite))]
        position = {name: i for i, name in enumerate(order)}
        for net in registry.nets(suite):
            for dep in registry.dependencies(net):
                assert position[dep] < position[net.name]


def test_local_run_trains_the_graph_and_reruns_skip_it(tmp_path, tiny_render):
    names = ["half0A", "transfer0A0B_1_1", "transfer0A0B_1_2"]
    out = tiny_render(tmp_path / "results", names)
    common = ["--suite", "mini", "--results", str(out), "--cpu"]
    dry = xfer("run", *common, "--slots", "2", "--dry-run", "transfer0A0B_1_[123]")
    assert dry.returncode == 0
    assert "train  transfer0A0B_1_1 after half0A\n" in dry.stdout and "4 to train, 2 at once" in dry.stdout
    assert "train  transfer0A0B_1_3 after half0A (NOT RENDERED" in dry.stdout
    assert "a real run would refuse to start: " in dry.stderr and "1 net(s) are not rendered" in dry.stderr
    assert not tail.log_files(out / "half0A")

    run = xfer("run", *common, "--slots", "2", "transfer0A0B_1_[12]")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 finished, 0 failed, 0 not run" in run.stdout
    base_done = (out / "half0A" / "caffe_imagenet_train_iter_24.solverstate").stat().st_mtime
    for name in names:
        assert netdir.is_finished(registry.get(name, "mini"), out)
    for name in names[1:]:
        assert log_start(tail.log_files(out / name)[0]) >= int(base_done)  # a transfer started after its base ended

    again = xfer("run", *common, "transfer0A0B_1_[12]")
    assert again.returncode == 0 and "0 to train" in again.stdout
    assert all(len(tail.log_files(out / name)) == 1 for name in names)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm-to-the-group"])
def test_interrupted_run_continues_where_it_stopped(tmp_path, tiny_render, stop):
    out = tiny_render(tmp_path / "results", ["half0B"], max_iter=240, snapshot=50, test_interval=100)
    tiny_render(out, ["transfer0B0A_1_1"])  # the usual few iterations; it starts from half0B's iteration 240
    common = ["--suite", "mini", "--results", str(out), "--cpu"]
    first = subprocess.Popen([sys.executable, "-m", "xfer.cli", "run", *common, "transfer0B0A_1_1"],
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
    folder = out / "half0B"
    deadline = time.monotonic() + 60
    while not netdir.snapshots(folder, "solverstate"):
        assert time.monotonic() < deadline, "half0B did not reach its first snapshot (iteration 50)"
        time.sleep(0.02)
    os.killpg(first.pid, stop)  # Ctrl-C in the terminal, or a batch system: the runner, its trainer and Caffe
    first.communicate(timeout=60)
    assert first.returncode == 130
    assert netdir.lock_holder(folder) is None
    assert netdir.read_status(folder)["state"] == "stopped"
    # The group's signal reaches the trainer directly, and the runner passes a stop on as SIGINT: whichever the
    # trainer sees first is the one it records (both stop Caffe with a snapshot).
    assert netdir.read_status(folder)["stop_signal"] in {signal.Signals(stop).name, "SIGINT"}
    stopped_at = netdir.latest_snapshot(folder, "solverstate")[0]
    assert 50 <= stopped_at < 240  # Caffe snapshotted when it was told to stop

    again = xfer("run", *common, "transfer0B0A_1_1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 finished" in again.stdout
    resumed = tail.log_files(folder)[-1].read_text()
    assert re.search(rf"Resuming from caffe_imagenet_train_iter_{stopped_at}\.solverstate", resumed)
    assert netdir.is_finished(registry.get("transfer0B0A_1_1", "mini"), out)
