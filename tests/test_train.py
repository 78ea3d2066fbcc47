"""`xfer train` with the real `caffe train` on CPU: base then frozen transfer, refusal, lock, kill -9 and resume."""
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from helpers import xfer
from xfer.logs import tail
from xfer.nets import layout, registry
from xfer.run import status
from xfer.run import netdir, train
from xfer.errors import XferError

pytestmark = pytest.mark.caffe


def read_status(folder):
    return json.loads((folder / "xfer_status.json").read_text())


def wait_for(predicate, timeout=60, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_base_then_frozen_transfer_on_cpu(tmp_path, tiny_render):
    out = tiny_render(tmp_path / "results", ["half0A", "transfer0A0B_1_2"])
    refused = xfer("train", "transfer0A0B_1_2", "--suite", "mini", "--results", str(out), "--cpu")
    assert refused.returncode == 2
    assert "base net half0A of transfer0A0B_1_2 has not finished" in refused.stderr
    assert not (out / "transfer0A0B_1_2" / "init.caffemodel").exists()  # no silent start from random weights

    for name in ("half0A", "transfer0A0B_1_2"):
        done = xfer("train", name, "--suite", "mini", "--results", str(out), "--cpu")
        assert done.returncode == 0, done.stderr
        folder = out / name
        logs = tail.log_files(folder)
        assert len(logs) == 1 and re.fullmatch(rf"\d{{6}}_\d{{6}}_{name}\.log", logs[0].name)
        text = logs[0].read_text()
        assert "Optimization Done." in text and "Test net output #0: accuracy" in text
        assert "solver_mode: CPU" in (folder / layout.CPU_SOLVER).read_text()
        state = read_status(folder)
        assert state["state"] == "finished" and state["iteration"] == 24 and state["test_iteration"] == 24
        assert 0 <= state["test"]["accuracy"] <= 1
    transfer = read_status(out / "transfer0A0B_1_2")
    assert transfer["command"][-2:] == ["-weights", "init.caffemodel"]
    assert transfer["verify"]["ok"] is True and set(transfer["verify"]["layers"]) == {"conv1", "conv2"}
    assert "frozen layers unchanged" in done.stdout

    again = xfer("train", "half0A", "--suite", "mini", "--results", str(out), "--cpu")
    assert again.returncode == 0 and "finished already" in again.stdout
    assert len(tail.log_files(out / "half0A")) == 1  # finished work is not trained again

    table = xfer("status", "--suite", "mini", "--results", str(out), "half0A", "transfer0A0B_1_2", "transfer0A0B_1_3")
    rows = {line.split()[0]: line.split() for line in table.stdout.splitlines()[1:-1]}
    assert rows["half0A"][1:3] == ["finished", "24/24"]
    assert rows["transfer0A0B_1_2"][5] == "ok"
    assert rows["transfer0A0B_1_3"][1:3] == ["not", "rendered"]


def test_unknown_net_and_unrendered_net_are_clear_errors(tmp_path):
    unknown = xfer("train", "transfer0A0Z_1_2", "--suite", "mini", "--results", str(tmp_path))
    assert unknown.returncode == 2 and "no net named 'transfer0A0Z_1_2'" in unknown.stderr
    unrendered = xfer("train", "half0A", "--suite", "mini", "--results", str(tmp_path), "--cpu")
    assert unrendered.returncode == 2 and "not rendered" in unrendered.stderr and "xfer render" in unrendered.stderr


def test_lock_refusal_then_kill_9_and_resume(tmp_path, tiny_render):
    """A second start is refused while the first trains; kill -9 of the whole run, then resume to max_iter."""
    long = dict(snapshot=20, test_interval=100)
    out = tiny_render(tmp_path / "results", ["half0B"], max_iter=100000, **long)  # cannot finish before the kill
    folder = out / "half0B"
    first = subprocess.Popen([sys.executable, "-m", "xfer.cli", "train", "half0B", "--suite", "mini",
                              "--results", str(out), "--cpu", "--quiet"], start_new_session=True)
    try:
        wait_for(lambda: len(netdir.snapshots(folder, "solverstate")) >= 2, what="two snapshots")
        second = xfer("train", "half0B", "--suite", "mini", "--results", str(out), "--cpu")
        assert second.returncode == 2
        assert "is being trained already" in second.stderr and f"pid {first.pid}" in second.stderr
        assert netdir.lock_holder(folder).startswith(f"pid {first.pid}")
        row = status.net_state(registry.get("half0B", "mini"), out)
        assert row["state"] == "running" and 0 < row["iteration"] < 100000 and row["eta"] > 0
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the trainer and Caffe at once, as a crashed node would
        first.wait()
    wait_for(lambda: netdir.lock_holder(folder) is None, what="the kernel to drop the lock")
    killed_at = netdir.latest_snapshot(folder, "solverstate")[0]
    assert not netdir.is_finished(registry.get("half0B", "mini"), out)
    assert status.net_state(registry.get("half0B", "mini"), out)["state"] == "stopped"

    tiny_render(out, ["half0B"], force=True, max_iter=killed_at + 60, **long)  # a goal it reaches in seconds
    resumed = xfer("train", "half0B", "--suite", "mini", "--results", str(out), "--cpu")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from caffe_imagenet_train_iter_" in resumed.stdout
    logs = tail.log_files(folder)
    assert len(logs) == 2
    second_log = logs[-1].read_text()
    resumed_at = int(re.search(r"Resuming from caffe_imagenet_train_iter_(\d+)\.solverstate", second_log).group(1))
    assert 20 <= resumed_at <= killed_at  # the newest whole snapshot (one cut by the kill is passed over)
    assert int(re.search(r"\] Iteration (\d+)", second_log).group(1)) == resumed_at  # continued, not restarted
    assert netdir.is_finished(registry.get("half0B", "mini"), out)
    assert read_status(folder)["state"] == "finished"


def test_a_cut_snapshot_is_not_resumed_from(tmp_path, tiny_render):
    out = tiny_render(tmp_path / "results", ["half0B"])
    folder = out / "half0B"
    assert train.train(registry.get("half0B", "mini"), out, cpu=True, quiet=True, poll=0.2) == 0
    whole = folder / "caffe_imagenet_train_iter_16.solverstate"
    final = folder / "caffe_imagenet_train_iter_24.solverstate"
    final.write_bytes(final.read_bytes()[:-7])  # killed while writing the last snapshot
    assert train.resume_point(folder) == whole


def test_foreign_lock_is_a_clear_error(tmp_path, tiny_render):
    out = tiny_render(tmp_path / "results", ["half0A"])
    with train.TrainLock(out / "half0A", "half0A"):
        with pytest.raises(XferError, match=r"being trained already \(pid \d+ on "):
            train.train(registry.get("half0A", "mini"), out, cpu=True, quiet=True)
    assert not tail.log_files(out / "half0A")


def last_logged_iteration(folder) -> int:
    text = tail.log_files(folder)[-1].read_text()
    found = re.findall(r"\] Iteration (\d+)", text)
    return int(found[-1]) if found else 0


def test_sigterm_to_the_process_group_leaves_a_snapshot_where_it_stopped(tmp_path, tiny_render):
    """What a batch system does to a local run: SIGTERM to every process of the group (trainer and Caffe) at once.
    No periodic snapshot: the one left is the one written at the stop, at or after the last iteration logged."""
    out = tiny_render(tmp_path / "results", ["half0B"], max_iter=1000000, snapshot=0, test_interval=1000000,
                      display=10)
    folder = out / "half0B"
    proc = subprocess.Popen([sys.executable, "-m", "xfer.cli", "train", "half0B", "--suite", "mini",
                             "--results", str(out), "--cpu", "--quiet"], stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        wait_for(lambda: tail.log_files(folder) and last_logged_iteration(folder) >= 100, what="iteration 100")
        seen = last_logged_iteration(folder)
        os.killpg(proc.pid, signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 128 + signal.SIGTERM, err
    stopped_at, state = netdir.latest_snapshot(folder, "solverstate")
    assert stopped_at >= seen  # lost no more than the iterations since the signal
    assert [it for it, _ in netdir.snapshots(folder)] == [stopped_at]  # the .caffemodel beside it, nothing older
    assert train.resume_point(folder) == state  # whole: the next start resumes from it
    assert f"stopped by SIGTERM (snapshot at iteration {stopped_at})" in err
    recorded = read_status(folder)
    assert recorded["state"] == "stopped" and recorded["stop_signal"] == "SIGTERM"
    assert recorded["stopped_at"] == stopped_at
    assert netdir.lock_holder(folder) is None
    log = tail.log_files(folder)[-1].read_text()
    assert "Optimization stopped early." in log


@pytest.mark.parametrize("signum, started, stopped, code", [
    (signal.SIGUSR1, 0, 3304, 138),      # time-limit warning after progress: the job script requeues on 138
    (signal.SIGUSR1, 3304, 3304, 1),     # no progress since the resume: fail rather than requeue forever
    (signal.SIGUSR1, 0, None, 1),        # stopped before Caffe wrote anything
    (signal.SIGTERM, 3304, 3304, 143),   # scancel / pre-emption: as a shell reports a SIGTERM
    (signal.SIGINT, 0, 10, 130),
])
def test_stop_exit_codes(signum, started, stopped, code):
    assert train.StopTraining(signum, started, stopped).exit_code() == code


def test_resume_iteration_of_a_command():
    resume = ["caffe", "train", "-snapshot", "caffe_imagenet_train_iter_3304.solverstate"]
    assert train.command_iteration(resume) == 3304
    assert train.command_iteration(["caffe", "train", "-weights", "init.caffemodel"]) == 0
