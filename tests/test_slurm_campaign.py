"""One campaign on the real loopback SLURM with real Caffe through every fault at once, finished with no command
typed after `xfer run`: one-minute time limits, pre-emptions at random (`scontrol requeue`), a crash injected into a
running Caffe (SIGSEGV), a slurmd killed with SIGKILL and restarted (the requeued half0A's launch on the dead node
fails; SLURM's kill for that launch may reach its next run: a SIGTERM it did not order), a slurmctld restart. It
reports the iterations trained twice per stop (a crash: at most those since its last periodic snapshot; any other
stop: none) and checks that every frozen layer stayed bit-identical to its base."""
import json
import os
import random
import re
import signal
import subprocess
import time

import pytest
from slurm_fixture import scontrol_job, slurm, start_slurmctld, start_slurmd, stop_daemon  # noqa: F401

from helpers import RESUMED, caffe_pids, iterations_per_second
from helpers import xfer as run_xfer
from xfer.logs import tail
from xfer.nets import registry
from xfer.run import netdir, surgery

pytestmark = [pytest.mark.slurm, pytest.mark.caffe]
BASES = ["half0A", "half0B"]
TRANSFERS = ["transfer0A0B_1_1", "transfer0A0B_1_2", "transfer0B0A_1_1", "transfer0B0A_1_2"]
STOPPED = "Optimization stopped early."


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.2)


def job_id(out, name) -> str:
    return json.loads((out / name / "xfer_slurm.json").read_text())["job_id"]


def state(job) -> str:
    found = scontrol_job(job)["JobState"]
    assert found not in ("FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"), f"job {job} {found}"
    return found


def training(out, name) -> bool:
    """The net's job is running and its Caffe is past its start (a log line of an iteration in its newest log)."""
    logs = tail.log_files(out / name)
    return (state(job_id(out, name)) == "RUNNING" and bool(caffe_pids(out / name)) and bool(logs)
            and "] Iteration" in logs[-1].read_text())


def slurm_out(out, name, jobs) -> str:
    path = out / name / f".xfer_slurm-{jobs[name]}.out"
    return path.read_text() if path.exists() else ""


def restarts(out) -> list:
    """Per restart of a base: (net, how the run before it ended, iterations trained twice)."""
    found = []
    for name in BASES:
        logs = [log.read_text() for log in tail.log_files(out / name)]
        for before, after in zip(logs, logs[1:]):
            reached = max((int(a or b) for a, b in re.findall(
                r"\] Iteration (\d+)|binary proto file \S+_iter_(\d+)\.caffemodel", before)), default=0)
            resumed = RESUMED.search(after)
            found.append((name, "stopped" if STOPPED in before else "crashed",
                          max(0, reached - (int(resumed.group(1)) if resumed else 0))))
    return found


def test_a_campaign_through_every_fault_at_once(slurm, tmp_path, tiny_render, monkeypatch):  # noqa: F811
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")  # two jobs on the two cores of the loopback node
    monkeypatch.setenv("XFER_JOB_CHECK_SECONDS", "2")
    rate = iterations_per_second(tmp_path / "calibrate", tiny_render)
    snapshot = max(50, int(rate * 5) // 10 * 10)  # a periodic snapshot every ~5 s of training
    max_iter = int(rate * 80) // snapshot * snapshot  # ~80 s of training: longer than the faults take
    out = tiny_render(tmp_path / "results", BASES, max_iter=max_iter, snapshot=snapshot, test_interval=max_iter,
                      display=10)
    tiny_render(out, TRANSFERS)
    started = time.monotonic()
    run = run_xfer("run", "--backend", "slurm", "--suite", "mini", "--results", str(out), "--cpu", "--time", "1",
                   *TRANSFERS, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    jobs = {name: job_id(out, name) for name in BASES + TRANSFERS}
    faults = []

    # The crash: half0A's Caffe dies by SIGSEGV after its first periodic snapshot (no snapshot at the stop); its job
    # requeues itself.
    wait_until(lambda: all(training(out, n) and netdir.snapshots(out / n, "solverstate") for n in BASES), 120,
               "both bases training past a snapshot")
    for pid in caffe_pids(out / "half0A"):
        os.kill(pid, signal.SIGSEGV)
    faults.append(("crash (SIGSEGV) of half0A's Caffe", time.monotonic() - started))
    wait_until(lambda: int(scontrol_job(jobs["half0A"])["Restarts"]) == 1, 60, "half0A's job to requeue itself")
    # The node is lost while half0B trains: slurmd killed, restarted once the orphaned run has stopped.
    stop_daemon(slurm, "slurmd", signal.SIGKILL)
    faults.append(("slurmd killed (SIGKILL)", time.monotonic() - started))
    wait_until(lambda: int(scontrol_job(jobs["half0B"])["Restarts"]) == 1, 120, "SLURM to requeue half0B")
    wait_until(lambda: not netdir.lock_holder(out / "half0B"), 60, "half0B's orphaned run to stop")
    start_slurmd(slurm)
    faults.append(("slurmd restarted", time.monotonic() - started))
    # The controller restarts while both bases train and the transfers wait on them.
    wait_until(lambda: all(training(out, n) for n in BASES), 120, "both bases training again")
    stop_daemon(slurm, "slurmctld")
    start_slurmctld(slurm)
    faults.append(("slurmctld restart", time.monotonic() - started))
    # The bases run on into their one-minute time limit (a stop 10 s before it, and a requeue).
    limited = lambda: [n for n in BASES if "stopped before the time limit" in slurm_out(out, n, jobs)]  # noqa: E731
    wait_until(limited, 150, "a time limit")
    faults.append((f"time limit of {' and '.join(limited())}", time.monotonic() - started))
    # Two pre-emptions at random (when, and which base of those training), then the campaign finishes by itself.
    rng = random.Random(23)
    for _ in range(2):
        time.sleep(rng.uniform(3, 10))
        unfinished = [n for n in BASES if not netdir.is_finished(registry.get(n, "mini"), out)]
        wait_until(lambda: not unfinished or any(training(out, n) for n in unfinished), 60, "a base training")
        running = [n for n in unfinished if training(out, n)]
        if running:
            victim = rng.choice(running)
            subprocess.run(["scontrol", "requeue", jobs[victim]], check=True)
            faults.append((f"pre-emption of {victim}", time.monotonic() - started))
    wait_until(lambda: all(state(jobs[n]) == "COMPLETED" for n in TRANSFERS), 240, "the transfers")
    took = time.monotonic() - started

    report = restarts(out)
    starts = sum(int(scontrol_job(job)["Restarts"]) + 1 for job in jobs.values())
    for name, how, twice in report:
        print(f"restart of {name}: the run before it {how}; iterations trained twice: {twice}")
    for what, at in faults:
        print(f"fault at {at:5.0f} s: {what}")
    for name in BASES:  # SLURM's own late kill of a run, when a requeued job's launch met the dead slurmd
        for line in slurm_out(out, name, jobs).splitlines():
            if "did not order" in line:
                print(f"{name}: {line}")
    print(f"campaign of {len(jobs)} nets: {took:.0f} s, {starts} starts, {len(faults)} faults, max_iter {max_iter}, "
          f"snapshot every {snapshot}, trained twice in all {sum(t for _, _, t in report)}")
    assert [(n, how) for n, how, _ in report if how == "crashed"] == [("half0A", "crashed")]
    assert all(twice == 0 for _, how, twice in report if how == "stopped")
    assert all(twice <= snapshot + 10 for _, how, twice in report if how == "crashed")
    assert "a failure that may pass (xfer train exit 75); requeueing job" in slurm_out(out, "half0A", jobs)
    for name in TRANSFERS:
        net = registry.get(name, "mini")
        verified = surgery.verify(net, out)  # every frozen layer against the base file, bit for bit
        assert verified["ok"] and len(verified["layers"]) == len(net.frozen_layers()) > 0, verified
        assert all(row["detail"] == "bit-identical" for row in verified["layers"]), verified
        assert netdir.read_status(out / name)["verify"]["ok"] is True
        assert int(scontrol_job(jobs[name])["Restarts"]) == 0  # started once, after its base had finished
