"""Stopping on the real loopback SLURM with real Caffe: a time limit (stop, snapshot, requeue, resume, dependents
keep waiting), scancel (a snapshot where it stopped), a base that fails for a real reason (its transfers never start,
`xfer run --wait` fails, `xfer status` says why)."""
import json
import re
import subprocess
import time
from datetime import datetime

import pytest
from slurm_fixture import scontrol_job, slurm  # noqa: F401  (the fixture)

from helpers import iterations_per_second
from helpers import xfer as run_xfer
from xfer.logs import tail
from xfer.nets import layout, registry
from xfer.errors import XferError
from xfer.run import failures, netdir, slurmjob, train
from xfer.run.backends import slurm as slurm_backend

pytestmark = [pytest.mark.slurm, pytest.mark.caffe]

STAMP = re.compile(r"^I(\d{8} \d\d:\d\d:\d\d\.\d+) .*\] Iteration (\d+) \(", re.M)  # the display lines
NEVER = 10 ** 7  # an interval that never comes: no periodic snapshot, no test


def xfer(*args, timeout=240):
    return run_xfer(*args, timeout=timeout)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.2)


def logged_iteration(folder) -> int:
    logs = tail.log_files(folder)
    found = STAMP.findall(logs[-1].read_text()) if logs else []
    return int(found[-1][1]) if found else 0


def job_id(out, name) -> str:
    return json.loads((out / name / "xfer_slurm.json").read_text())["job_id"]


def slurm_time(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")


def test_time_limit_stops_requeues_and_resumes_while_dependents_wait(slurm, tmp_path, tiny_render):  # noqa: F811
    rate = iterations_per_second(tmp_path / "calibrate", tiny_render)
    max_iter = int(rate * 70)  # 70 s of training at the measured speed: more than the one-minute limit allows
    out = tiny_render(tmp_path / "results", ["half0B"], max_iter=max_iter, snapshot=0, test_interval=NEVER,
                      display=100)
    tiny_render(out, ["transfer0B0A_1_1"])  # a few iterations from half0B's final snapshot
    common = ["--backend", "slurm", "--suite", "mini", "--results", str(out), "--cpu", "--time", "1"]
    first = xfer("run", *common, "half0B")
    assert first.returncode == 0, first.stderr
    base = job_id(out, "half0B")
    assert "--signal=B:USR1@10" in json.loads((out / "half0B" / "xfer_slurm.json").read_text())["command"]
    wait_until(lambda: netdir.lock_holder(out / "half0B"), 60, "half0B training")

    # Submitting again while the base trains as a job: its transfer waits on that job instead of being left out.
    again = xfer("run", *common, "half0B", "transfer0B0A_1_1")
    assert again.returncode == 0, again.stderr
    assert f"half0B: queued already as job {base} (running)" in again.stdout
    transfer = job_id(out, "transfer0B0A_1_1")
    assert json.loads((out / "transfer0B0A_1_1" / "xfer_slurm.json").read_text())["depends_on"] == [base]

    def transfer_done():
        assert scontrol_job(transfer)["JobState"] in ("PENDING", "RUNNING", "COMPLETING", "COMPLETED")
        return scontrol_job(transfer)["JobState"] == "COMPLETED"
    wait_until(transfer_done, 240, "the base through its time limits, then its transfer")

    base_job = scontrol_job(base)
    assert base_job["JobState"] == "COMPLETED" and int(base_job["Restarts"]) >= 1
    assert slurm_time(scontrol_job(transfer)["StartTime"]) >= slurm_time(base_job["EndTime"])
    assert netdir.is_finished(registry.get("transfer0B0A_1_1", "mini"), out)
    logs = [log.read_text() for log in tail.log_files(out / "half0B")]
    assert len(logs) == int(base_job["Restarts"]) + 1
    for before, after in zip(logs, logs[1:]):  # each run stopped with a snapshot; the next resumed from it
        assert "Optimization stopped early." in before
        stopped_at = re.findall(r"Snapshotting solver state to binary proto file caffe_imagenet_train_iter_(\d+)",
                                before)[-1]
        assert 0 < int(stopped_at) < max_iter
        assert f"Resuming from caffe_imagenet_train_iter_{stopped_at}.solverstate" in after
        assert int(STAMP.findall(after)[0][1]) <= int(stopped_at) + 100  # continued there, not from 0
    assert "Optimization Done." in logs[-1] and "stopped early" not in logs[-1]
    slurm_out = (out / "half0B" / f".xfer_slurm-{base}.out").read_text()
    assert slurm_out.count(f"requeueing job {base}") == int(base_job["Restarts"])


def test_scancel_leaves_a_snapshot_where_it_stopped(slurm, tmp_path, tiny_render):  # noqa: F811
    out = tiny_render(tmp_path / "results", ["half0A"], max_iter=NEVER, snapshot=0, test_interval=NEVER, display=10)
    folder = out / "half0A"
    run = xfer("run", "--backend", "slurm", "--suite", "mini", "--results", str(out), "--cpu", "half0A")
    assert run.returncode == 0, run.stderr
    job = job_id(out, "half0A")
    wait_until(lambda: logged_iteration(folder) >= 100, 60, "iteration 100")
    seen = logged_iteration(folder)
    subprocess.run(["scancel", job], check=True)
    wait_until(lambda: scontrol_job(job)["JobState"] == "CANCELLED" and not netdir.lock_holder(folder), 60,
               "the job to end")
    stopped_at, state = netdir.latest_snapshot(folder, "solverstate")
    assert stopped_at >= seen  # no more lost than the iterations since scancel
    assert train.resume_point(folder) == state
    recorded = netdir.read_status(folder)
    assert recorded["state"] == "stopped" and recorded["stop_signal"] == "SIGTERM"
    table = xfer("status", "--suite", "mini", "--results", str(out), "half0A")
    assert f"half0A: stopped by SIGTERM (snapshot at iteration {stopped_at})" in table.stdout
    assert f"{job} CANCELLED" in table.stdout
    # The job script asked the controller about the SIGTERM: scancel ordered it, so no requeue, no stray stop.
    assert scontrol_job(job)["Restarts"] == "0" and not failures.tries(folder, "strays")


def test_failed_base_leaves_its_transfers_unstarted(slurm, tmp_path, tiny_render):  # noqa: F811
    out = tiny_render(tmp_path / "results", ["half0A", "transfer0A0B_1_1"])
    prototxt = out / "half0A" / "imagenet_train.prototxt"
    # A crop larger than the 28x28 images: Caffe refuses it while setting up the net (a CHECK, even in release).
    prototxt.write_text(prototxt.read_text().replace("transform_param {", "transform_param {\n    crop_size: 64", 1))
    run = xfer("run", "--backend", "slurm", "--suite", "mini", "--results", str(out), "--cpu", "--wait",
               "half0A", "transfer0A0B_1_1")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "not finished: half0A, transfer0A0B_1_1" in run.stdout
    assert scontrol_job(job_id(out, "half0A"))["JobState"] == "FAILED"
    transfer = scontrol_job(job_id(out, "transfer0A0B_1_1"))
    # Never started: slurmd opens a job's output file when it starts it. (RunTime is no witness: for a job cancelled
    # while pending, slurmctld may report the time since the epoch.)
    def output(name):
        return out / name / layout.SLURM_OUTPUT.replace("%j", job_id(out, name))
    assert transfer["JobState"] == "CANCELLED" and not output("transfer0A0B_1_1").exists()
    assert output("half0A").exists()  # the base did start (and failed)
    assert not tail.log_files(out / "transfer0A0B_1_1") and not (out / "transfer0A0B_1_1" / "init.caffemodel").exists()
    table = xfer("status", "--suite", "mini", "--results", str(out), "half0A", "transfer0A0B_1_1")
    reason = re.search(r"^half0A: failed: (.*) \(log (\S+)\)$", table.stdout, re.M)
    assert reason, table.stdout
    assert "Check failed: datum_height >= crop_size (28 vs. 64)" in reason.group(1)
    assert reason.group(1) in (out / "half0A" / reason.group(2)).read_text()  # the log's own line


def test_signal_lead_fits_the_time_limit():
    assert slurm_backend.signal_lead(None) == slurm_backend.DEFAULT_LEAD == 300
    assert slurm_backend.signal_lead("3-00:00:00") == 300
    assert slurm_backend.signal_lead("1") == 10  # a sixth of a short limit: the run makes progress first
    assert slurm_backend.signal_lead("1:30:00", 0) == 0
    assert [slurm_backend.time_seconds(t) for t in ("90", "1:30", "1:30:00", "2-5", "2-5:10")] == [
        5400, 90, 5400, 190800, 191400]
    with pytest.raises(XferError, match="does not fit the time limit"):
        slurm_backend.signal_lead("1", 60)
    with pytest.raises(XferError, match="is not a SLURM time limit"):
        slurm_backend.time_seconds("1:2:3:4")
    dry = xfer("run", "--backend", "slurm", "--suite", "mini", "--cpu", "--dry-run", "--time", "2:00:00",
               "--signal-lead", "600", "half0A")
    assert dry.returncode == 0 and "--time=2:00:00 --signal=B:USR1@600" in dry.stdout, dry.stderr


def test_a_sigterm_is_stray_only_for_a_job_the_controller_lists_running(slurm, tmp_path, monkeypatch):  # noqa: F811
    """The job script's question after a SIGTERM (xfer/run/slurmjob.py): outside SLURM, and for a job the
    controller does not know, the stop stands (exit 1) and nothing is counted."""
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert slurmjob.stray_stop({}) is None
    assert slurmjob.main([str(tmp_path)]) == 1
    assert slurmjob.stray_stop({"SLURM_JOB_ID": "999999", "SLURM_RESTART_COUNT": "0"}) is None
    monkeypatch.setenv("SLURM_JOB_ID", "999999")
    assert slurmjob.main([str(tmp_path)]) == 1 and not failures.tries(tmp_path, "strays")
