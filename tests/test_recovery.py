"""A campaign that goes on by itself after what stops it, locally with real Caffe: a crash of Caffe (retried from
the newest whole snapshot while its transfer waits), `xfer run` killed with SIGKILL (runner, trainers and Caffe at
once: the same command continues), a final snapshot cut short (never used: surgery refuses it, the runner trains
the base again from its newest whole snapshot)."""
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import RESUMED, caffe_pids, kill_if_running, trained_twice
from helpers import xfer as run_xfer
from xfer import caffeenv
from xfer.logs import tail
from xfer.nets import layout, registry
from xfer.run import failures, netdir, snapshots, train

pytestmark = pytest.mark.caffe


def xfer(*args, timeout=240):
    return run_xfer(*args, timeout=timeout)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.05)


def start_run(*args):
    return subprocess.Popen([sys.executable, "-m", "xfer.cli", "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def child_of(pid, word) -> int:
    """The child process of `pid` whose command line holds `word` (the runner's trainer)."""
    for entry in (name for name in os.listdir("/proc") if name.isdigit()):
        try:
            stat = open(f"/proc/{entry}/stat").read()
            if stat.rsplit(")", 1)[-1].split()[1] == str(pid) and word in open(f"/proc/{entry}/cmdline", "rb").read():
                return int(entry)
        except OSError:  # gone meanwhile
            continue
    raise AssertionError(f"pid {pid} has no child running {word!r}")


def test_a_crash_is_retried_while_its_transfer_waits(tmp_path, tiny_render):
    out = tiny_render(tmp_path / "results", ["half0B"], max_iter=400, snapshot=50, test_interval=400, display=10)
    tiny_render(out, ["transfer0B0A_1_1"])
    folder = out / "half0B"
    run = start_run("--suite", "mini", "--results", str(out), "--cpu", "--retries", "2", "transfer0B0A_1_1")
    try:
        wait_until(lambda: netdir.snapshots(folder, "solverstate"), 60, "half0B's first snapshot")
        os.kill(child_of(run.pid, b"train"), signal.SIGKILL)  # the trainer alone: its Caffe snapshots and stops
        wait_until(lambda: len(tail.log_files(folder)) == 2 and caffe_pids(folder)
                   and "] Iteration" in tail.log_files(folder)[1].read_text(), 60, "half0B's second run")
        for pid in caffe_pids(folder):
            os.kill(pid, signal.SIGSEGV)  # a crash: no snapshot at the stop
        output = run.communicate(timeout=180)[0]
    finally:
        kill_if_running(run)
    assert run.returncode == 0, output
    assert "half0B: xfer train was killed by SIGKILL; starting it again from its newest whole snapshot (try 1 of 2)" \
        in output
    assert "half0B: caffe was killed by SIGSEGV; starting it again from its newest whole snapshot (try 2 of 2)" \
        in output
    assert "2 finished, 0 failed, 0 not run" in output
    logs = [log.read_text() for log in tail.log_files(folder)]
    assert len(logs) == 3 and all(RESUMED.search(log) for log in logs[1:])
    assert "Optimization stopped early." in logs[0]  # the trainer's death stopped Caffe with a snapshot
    assert 0 <= trained_twice(folder) <= 50 + 10  # none for that stop; for the crash, at most the iterations since
    # the last periodic snapshot
    assert [t["reason"] for t in failures.tries(folder)] == ["xfer train was killed by SIGKILL",
                                                             "caffe was killed by SIGSEGV"]
    transfer_start = tail.log_files(out / "transfer0B0A_1_1")[0].stat().st_ctime
    assert transfer_start >= (folder / "caffe_imagenet_train_iter_400.solverstate").stat().st_mtime - 1
    assert netdir.read_status(out / "transfer0B0A_1_1")["verify"]["ok"] is True


def test_sigkill_of_the_whole_run_then_the_same_command_continues(tmp_path, tiny_render):
    out = tiny_render(tmp_path / "results", ["half0A", "half0B"], max_iter=400, snapshot=40, test_interval=400,
                      display=10)
    common = ["--suite", "mini", "--results", str(out), "--cpu", "--slots", "2", "half0A", "half0B"]
    first = start_run(*common)
    try:
        wait_until(lambda: all(len(netdir.snapshots(out / n, "solverstate")) >= 2 for n in ("half0A", "half0B")),
                   90, "two snapshots of each net")
        os.killpg(first.pid, signal.SIGKILL)  # runner, trainers and Caffe at once, as a node that dies
        first.communicate(timeout=30)
    finally:
        kill_if_running(first)
    wait_until(lambda: not any(netdir.lock_holder(out / n) for n in ("half0A", "half0B")), 30, "the locks to go")
    newest = {n: snapshots.resume_point(out / n) for n in ("half0A", "half0B")}
    again = xfer("run", *common)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 finished, 0 failed, 0 not run" in again.stdout
    for name, state in newest.items():
        assert state is not None
        logs = tail.log_files(out / name)
        assert len(logs) == 2
        assert RESUMED.search(logs[1].read_text()).group(1) == layout.SNAPSHOT_RE.search(state.name).group(1)
        assert trained_twice(out / name) <= 40 + 10
        assert netdir.is_finished(registry.get(name, "mini"), out)


def cut_at_a_layer(path) -> None:
    """What a write cut between two layers leaves: a file that parses, missing its last layers."""
    model = caffeenv.caffe_pb2().NetParameter()
    model.ParseFromString(path.read_bytes())
    del model.layer[len(model.layer) // 2:]
    path.write_bytes(model.SerializeToString())


@pytest.mark.parametrize("cut", ["mid-field", "at-a-layer"])
def test_a_cut_final_snapshot_is_never_used(tmp_path, tiny_render, cut):
    out = tiny_render(tmp_path / "results", ["half0A", "transfer0A0B_1_1"])
    base = registry.get("half0A", "mini")
    assert train.train(base, out, cpu=True, quiet=True, poll=0.2) == 0
    final = netdir.final_snapshot_path(base, out)
    if cut == "mid-field":
        final.write_bytes(final.read_bytes()[: final.stat().st_size // 2])  # the disk filled at the last write
    else:
        cut_at_a_layer(final)
    assert netdir.is_finished(base, out)  # both files are there: only their contents say it is broken
    assert snapshots.resume_point(out / "half0A").name == "caffe_imagenet_train_iter_16.solverstate"

    refused = xfer("surgery", "--net", str(out / "transfer0A0B_1_1"))
    assert refused.returncode == 2 and str(out / "transfer0A0B_1_1" / "basenet" / final.name) in refused.stderr
    assert ("does not parse" if cut == "mid-field" else "has no weights for layer") in refused.stderr
    assert not (out / "transfer0A0B_1_1" / "init.caffemodel").exists()
    direct = xfer("train", "transfer0A0B_1_1", "--suite", "mini", "--results", str(out), "--cpu")
    assert direct.returncode == 2 and f"{final}: the final weights of base net half0A" in direct.stderr

    run = xfer("run", "--suite", "mini", "--results", str(out), "--cpu", "transfer0A0B_1_1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "half0A: its final snapshot" in run.stdout and "2 finished" in run.stdout
    logs = tail.log_files(out / "half0A")
    assert len(logs) == 2 and RESUMED.search(logs[1].read_text()).group(1) == "16"
    assert snapshots.weights_problem(final) is None and list((out / "half0A").glob("*.broken-*"))
    assert netdir.read_status(out / "transfer0A0B_1_1")["verify"]["ok"] is True
