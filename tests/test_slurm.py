"""`xfer run --backend slurm` against real SLURM daemons on loopback, training mini nets with real Caffe."""
import json
import re
import subprocess
import time
from datetime import datetime

import pytest
from slurm_fixture import scontrol_job, slurm  # noqa: F401  (the fixture)

from helpers import xfer as run_xfer
from xfer.logs import tail
from xfer.nets import registry
from xfer.run import netdir

pytestmark = [pytest.mark.slurm, pytest.mark.caffe]


def xfer(*args, timeout=240):
    """`xfer ARGS`, stopped after 240 s: a hung trainer must fail the test, not stall the suite."""
    return run_xfer(*args, timeout=timeout)


def job_record(out, name):
    return json.loads((out / name / "xfer_slurm.json").read_text())


def slurm_time(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")


def test_graph_runs_transfers_after_their_base(slurm, tmp_path, tiny_render):  # noqa: F811
    names = ["half0A", "transfer0A0B_1_1", "transfer-ft0A0B_1_2"]
    out = tiny_render(tmp_path / "results", names)
    dry = xfer("run", "--backend", "slurm", "--suite", "mini", "--results", str(out), "--cpu", "--dry-run", *names)
    assert dry.returncode == 0, dry.stderr
    assert "--dependency=afterok:<job of half0A>" in dry.stdout and "--requeue" in dry.stdout
    assert not (out / "half0A" / "xfer_slurm.json").exists()  # a dry run submits and writes nothing

    run = xfer("run", "--backend", "slurm", "--suite", "mini", "--results", str(out), "--cpu", "--wait", *names)
    assert run.returncode == 0, run.stdout + run.stderr
    base = job_record(out, "half0A")
    base_job = scontrol_job(base["job_id"])
    assert base_job["JobState"] == "COMPLETED"
    for name in names[1:]:
        record = job_record(out, name)
        assert record["depends_on"] == [base["job_id"]]
        assert f"--dependency=afterok:{base['job_id']}" in record["command"]
        job = scontrol_job(record["job_id"])
        assert job["JobState"] == "COMPLETED"
        assert slurm_time(job["StartTime"]) >= slurm_time(base_job["EndTime"])  # started only after the base ended
        first_line = tail.log_files(out / name)[0].read_text().splitlines()[0]
        started = datetime.strptime(first_line[1:18], "%Y%m%d %H:%M:%S")
        assert started.timestamp() >= (out / "half0A" / "caffe_imagenet_train_iter_24.solverstate").stat().st_mtime - 1
    for name in names:
        assert netdir.is_finished(registry.get(name, "mini"), out)
    status = json.loads((out / "transfer0A0B_1_1" / "xfer_status.json").read_text())
    assert status["verify"]["ok"] is True
    assert status["job"] == str(job_record(out, "transfer0A0B_1_1")["job_id"])  # XFER_JOB, set by the job script

    table = xfer("status", "--suite", "mini", "--results", str(out), *names)
    assert f"{base['job_id']} COMPLETED" in table.stdout
    again = xfer("run", "--backend", "slurm", "--suite", "mini", "--results", str(out), "--cpu", *names)
    assert again.returncode == 0 and "submitted" not in again.stdout  # finished nets are not submitted again
    assert job_record(out, "half0A") == base


def test_requeued_job_resumes_from_its_snapshot(slurm, tmp_path, tiny_render):  # noqa: F811
    # Long enough not to finish before the requeue lands (the mini net runs a few hundred iterations a second).
    out = tiny_render(tmp_path / "results", ["half0B"], max_iter=1200, snapshot=100, test_interval=600)
    folder = out / "half0B"
    run = xfer("run", "--backend", "slurm", "--suite", "mini", "--results", str(out), "--cpu", "half0B")
    assert run.returncode == 0, run.stderr
    job = job_record(out, "half0B")["job_id"]
    deadline = time.monotonic() + 60
    while len(netdir.snapshots(folder, "solverstate")) < 2:
        assert time.monotonic() < deadline, "no snapshot within 60 s"
        time.sleep(0.1)
    subprocess.run(["scontrol", "requeue", job], check=True)  # what pre-emption or a node failure does
    deadline = time.monotonic() + 60
    while scontrol_job(job)["JobState"] != "PENDING":
        assert time.monotonic() < deadline, "the job was not requeued within 60 s"
        time.sleep(0.2)
    # SLURM holds a requeued job back for cred_expire seconds (10 here, 120 by default); release it now, as an admin
    # would.
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
    deadline = time.monotonic() + 120
    while not netdir.is_finished(registry.get("half0B", "mini"), out) or netdir.lock_holder(folder):
        assert time.monotonic() < deadline, "the requeued job did not finish within 120 s"
        time.sleep(0.2)
    logs = tail.log_files(folder)
    assert len(logs) == 2
    assert re.search(r"Resuming from caffe_imagenet_train_iter_\d+\.solverstate", logs[1].read_text())
    assert int(scontrol_job(job)["Restarts"]) == 1
    slurm_out = (folder / f".xfer_slurm-{job}.out").read_text()
    assert "restart 0" in slurm_out and "restart 1" in slurm_out


def test_submission_error_is_clear(slurm, tmp_path, tiny_render):  # noqa: F811
    out = tiny_render(tmp_path / "results", ["half0A"])
    run = xfer("run", "--backend", "slurm", "--suite", "mini", "--results", str(out), "--cpu",
               "--partition", "nosuchpartition", "half0A")
    assert run.returncode == 2
    assert "sbatch refused the job" in run.stderr and "nosuchpartition" in run.stderr
    assert not (out / "half0A" / "xfer_slurm.json").exists()


def test_rehearsal_on_slurm(slurm, tmp_path):  # noqa: F811
    """`xfer rehearse --backend slurm` on a smaller graph (a transfer and its base, 2 iterations): the full-size
    CaffeNet trained in SLURM jobs, then the same checks as the CPU rehearsal."""
    out = tmp_path / "rehearsal"
    proc = xfer("rehearse", "--backend", "slurm", "--out", str(out), "--nets", "transfer0A0B_1_3",
                "--set", "max_iter=2", "--set", "snapshot=2", "--set", "test_interval=2", timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    record = json.loads((out / "rehearse.json").read_text())
    assert record["nets"] == ["half0A", "transfer0A0B_1_3"] and record["backend"] == "slurm"
    assert all(check["ok"] for check in record["checks"]), record["checks"]
    for name in record["nets"]:
        job = scontrol_job(job_record(out / "results", name)["job_id"])
        assert job["JobState"] == "COMPLETED"
        assert (out / "results" / name / "caffe_imagenet_train_iter_2.caffemodel").stat().st_size > 200e6
