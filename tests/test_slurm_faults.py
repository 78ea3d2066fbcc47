"""Faults on the real loopback SLURM with real Caffe, none answered by a command: a crash of Caffe in a job (the job
requeues itself and resumes, its transfer waits), a controller restart (jobs and dependencies survive, `xfer status`
and `xfer run` see them) and a node whose slurmd dies (SLURM requeues the job, it resumes, its transfer runs)."""
import json
import os
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest
from slurm_fixture import scontrol_job, slurm, start_slurmctld, start_slurmd, stop_daemon  # noqa: F401

from helpers import RESUMED, argv0, caffe_pids, iterations_per_second, pids_where, trained_twice
from helpers import xfer as run_xfer
from xfer.logs import tail
from xfer.nets import registry
from xfer.run import failures, netdir

pytestmark = [pytest.mark.slurm, pytest.mark.caffe]


def xfer(*args, timeout=240):
    return run_xfer(*args, timeout=timeout)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what() if callable(what) else what}: not within {timeout} s"
        time.sleep(0.2)


def cluster_state(conf, job) -> str:
    """What to print when the cluster did not do what a test waits for: the job, the node, the controller's log."""
    fields = scontrol_job(job)
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%T %E"], capture_output=True, text=True).stdout.strip()
    log = (Path(conf).parent / "slurmctld.log").read_text().splitlines()[-15:]
    return (f"job {job} {fields.get('JobState')} restarts {fields.get('Restarts')} reason {fields.get('Reason')}; "
            f"node {node}\n" + "\n".join(log))


def job_id(out, name) -> str:
    return json.loads((out / name / "xfer_slurm.json").read_text())["job_id"]


def slurm_time(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")


def completed(job) -> bool:
    state = scontrol_job(job)["JobState"]
    assert state in ("PENDING", "RUNNING", "COMPLETING", "COMPLETED", "REQUEUED"), f"job {job}: {state}"
    return state == "COMPLETED"


def check_transfer_after(out, base, transfer):
    base_job, transfer_job = scontrol_job(job_id(out, base)), scontrol_job(job_id(out, transfer))
    assert transfer_job["JobState"] == "COMPLETED" and int(transfer_job["Restarts"]) == 0
    assert slurm_time(transfer_job["StartTime"]) >= slurm_time(base_job["EndTime"])
    assert netdir.read_status(out / transfer)["verify"]["ok"] is True
    return base_job


def test_a_crash_requeues_the_job_and_its_transfer_waits(slurm, tmp_path, tiny_render):  # noqa: F811
    out = tiny_render(tmp_path / "results", ["half0B"], max_iter=300, snapshot=50, test_interval=300, display=10)
    tiny_render(out, ["transfer0B0A_1_1"])
    folder = out / "half0B"
    run = xfer("run", "--backend", "slurm", "--suite", "mini", "--results", str(out), "--cpu", "--retries", "1",
               "transfer0B0A_1_1")
    assert run.returncode == 0, run.stderr
    assert "--retries 1" in (folder / ".xfer_slurm.sh").read_text()
    wait_until(lambda: len(netdir.snapshots(folder, "solverstate")) >= 2, 90, "half0B's second snapshot")
    for pid in caffe_pids(folder):
        os.kill(pid, signal.SIGSEGV)
    wait_until(lambda: completed(job_id(out, "transfer0B0A_1_1")), 240, "the base's retry, then its transfer")
    base_job = check_transfer_after(out, "half0B", "transfer0B0A_1_1")
    assert base_job["JobState"] == "COMPLETED" and int(base_job["Restarts"]) == 1
    slurm_out = (folder / f".xfer_slurm-{job_id(out, 'half0B')}.out").read_text()
    assert "a failure that may pass (xfer train exit 75); requeueing job" in slurm_out
    assert [t["reason"] for t in failures.tries(folder)] == ["caffe was killed by SIGSEGV"]
    logs = tail.log_files(folder)
    assert len(logs) == 2 and RESUMED.search(logs[1].read_text())
    assert trained_twice(folder) <= 50 + 10  # at most the iterations since the last periodic snapshot


def test_controller_restart_then_node_loss(slurm, tmp_path, tiny_render, monkeypatch):  # noqa: F811
    monkeypatch.setenv("XFER_JOB_CHECK_SECONDS", "2")  # the trainers of the jobs ask for their job every 2 s
    # Long enough to train through both faults (about 45 s from the first snapshot) at the speed measured now.
    rate = iterations_per_second(tmp_path / "calibrate", tiny_render)
    snapshot = max(50, int(rate * 5) // 10 * 10)
    max_iter = int(rate * 75) // snapshot * snapshot
    out = tiny_render(tmp_path / "results", ["half0A"], max_iter=max_iter, snapshot=snapshot, test_interval=max_iter,
                      display=10)
    tiny_render(out, ["transfer0A0B_1_1"])
    folder = out / "half0A"
    common = ["--backend", "slurm", "--suite", "mini", "--results", str(out), "--cpu"]
    assert xfer("run", *common, "transfer0A0B_1_1").returncode == 0
    base, transfer = job_id(out, "half0A"), job_id(out, "transfer0A0B_1_1")
    wait_until(lambda: netdir.snapshots(folder, "solverstate"), 90, "half0A's first snapshot")

    stop_daemon(slurm, "slurmctld")
    down = xfer("run", *common, "transfer0A0B_1_1")
    assert down.returncode == 2 and "the SLURM controller does not answer" in down.stderr  # submits nothing twice
    start_slurmctld(slurm)  # without -c: from its state folder
    assert scontrol_job(base)["JobState"] == "RUNNING"
    assert scontrol_job(transfer)["JobState"] == "PENDING"
    assert scontrol_job(transfer)["Dependency"].startswith(f"afterok:{base}")
    table = xfer("status", "--suite", "mini", "--results", str(out))
    assert f"{base} RUNNING" in table.stdout and f"{transfer} PENDING" in table.stdout
    again = xfer("run", *common, "transfer0A0B_1_1")
    assert again.returncode == 0 and "submitted" not in again.stdout
    assert f"half0A: queued already as job {base} (running)" in again.stdout
    assert f"transfer0A0B_1_1: queued already as job {transfer} (pending)" in again.stdout

    stop_daemon(slurm, "slurmd", signal.SIGKILL)  # the node is lost; the job's processes go on without it
    lost_at = netdir.latest_snapshot(folder, "solverstate")[0]
    requeued = lambda: int(scontrol_job(base)["Restarts"]) >= 1  # noqa: E731
    wait_until(requeued, 120, lambda: "SLURM to requeue the job of the lost node: " + cluster_state(slurm, base))
    # The orphaned run saw its job requeued and stopped with a snapshot (else slurmd kills it when it is back).
    wait_until(lambda: netdir.lock_holder(folder) is None, 60, "the orphaned run to stop")
    stopped = netdir.read_status(folder)
    assert stopped["state"] == "stopped" and f"SLURM requeued job {base}" in stopped["stop_reason"]
    start_slurmd(slurm)
    wait_until(lambda: completed(transfer), 300, "the requeued base, then its transfer")
    base_job = check_transfer_after(out, "half0A", "transfer0A0B_1_1")
    assert base_job["JobState"] == "COMPLETED" and int(base_job["Restarts"]) == 1
    logs = tail.log_files(folder)
    assert len(logs) == 2
    resumed = int(RESUMED.search(logs[1].read_text()).group(1))
    assert lost_at <= resumed < max_iter
    print(f"node loss: resumed at {resumed}, trained twice {trained_twice(folder)}; "
          f"first run ended: {logs[0].read_text().splitlines()[-1]}")
    assert "Optimization stopped early." in logs[0].read_text()
    assert resumed == stopped["stopped_at"] and trained_twice(folder) == 0
    assert netdir.is_finished(registry.get("half0A", "mini"), out)


def job_processes(job) -> list:
    """Pids of every process of SLURM job `job` but its slurmstepd: what slurmstepd signals when it kills the job."""
    mark = f"SLURM_JOB_ID={job}".encode()
    return pids_where(lambda proc: mark in open(f"{proc}/environ", "rb").read().split(b"\0")
                      and not argv0(proc).startswith(b"slurmstepd"))


def test_a_sigterm_slurm_did_not_order_requeues_the_job(slurm, tmp_path, tiny_render):  # noqa: F811
    """A kill SLURM queued for an earlier run of a job (its launch failed on a node that had just died) reaches the
    node after the job has started there again: SIGTERM to every process of the job while the controller lists it
    RUNNING. The job script requeues it instead of ending FAILED and cancelling its transfer."""
    rate = iterations_per_second(tmp_path / "calibrate", tiny_render)
    max_iter = max(500, int(rate * 20) // 100 * 100)
    out = tiny_render(tmp_path / "results", ["half0B"], max_iter=max_iter, snapshot=0, test_interval=max_iter,
                      display=10)
    tiny_render(out, ["transfer0B0A_1_1"])
    folder = out / "half0B"
    assert xfer("run", "--backend", "slurm", "--suite", "mini", "--results", str(out), "--cpu",
                "transfer0B0A_1_1").returncode == 0
    base, transfer = job_id(out, "half0B"), job_id(out, "transfer0B0A_1_1")
    wait_until(lambda: tail.log_files(folder) and "] Iteration" in tail.log_files(folder)[-1].read_text(), 60,
               "half0B training")
    for pid in job_processes(base):
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: completed(transfer), 240, lambda: "the requeued base, then its transfer: "
               + cluster_state(slurm, base))
    base_job = check_transfer_after(out, "half0B", "transfer0B0A_1_1")
    assert base_job["JobState"] == "COMPLETED" and int(base_job["Restarts"]) == 1
    slurm_out = (folder / f".xfer_slurm-{base}.out").read_text()
    assert f"SIGTERM that SLURM did not order for this run (job {base} still RUNNING at restart 0" in slurm_out
    assert not failures.tries(folder)  # SLURM's stop, not a failure of the net: its --retries are untouched
    assert [t["reason"].split(" (")[0] for t in failures.tries(folder, "strays")] == [
        "SIGTERM that SLURM did not order for this run"]
    logs = tail.log_files(folder)
    assert len(logs) == 2 and "Optimization stopped early." in logs[0].read_text()
    assert trained_twice(folder) == 0  # Caffe snapshotted where the stray SIGTERM stopped it
