"""What a trainer inside a SLURM job asks the controller about its own job: whether SLURM has requeued it.

When a node loses contact with the controller (its slurmd died, the network split), SLURM marks the node DOWN after
SlurmdTimeout and requeues its jobs, while their processes may go on running there. When the node comes back, the
controller has slurmd kill them at once (SIGKILL: no snapshot), and the requeued job starts again from the last
periodic snapshot. A trainer that sees its job requeued under it stops first, with a snapshot at the current
iteration, so the requeued run loses nothing. It asks every JOB_CHECK_SECONDS (one `scontrol` call); a controller
that does not answer (restarting) is no news.
"""
import os
import subprocess
import time

JOB_CHECK_SECONDS = float(os.environ.get("XFER_JOB_CHECK_SECONDS", "30"))


class JobWatch:
    """requeued(): a reason once SLURM has requeued the job this process runs in (its restart count went past the
    one this run started with), else None; asks at most every `every` seconds. Outside SLURM: always None."""

    def __init__(self, environ=None, every=JOB_CHECK_SECONDS):
        environ = os.environ if environ is None else environ
        self.job, self.every = environ.get("SLURM_JOB_ID"), every
        self.restart = int(environ.get("SLURM_RESTART_COUNT") or 0)
        self.next = time.monotonic() + every

    def requeued(self):
        if not self.job or time.monotonic() < self.next:
            return None
        self.next = time.monotonic() + self.every
        fields = job_fields(self.job)
        restarts = fields.get("Restarts", "")
        if restarts.isdigit() and int(restarts) > self.restart:
            return (f"SLURM requeued job {self.job} (now {fields.get('JobState', '?')}, restart {restarts}): its "
                    "node lost contact with the controller")
        return None


def job_fields(job) -> dict:
    """`scontrol show job -o JOB` as {Key: Value}; {} when the controller does not answer."""
    try:
        proc = subprocess.run(["scontrol", "show", "job", "-o", str(job)], capture_output=True, text=True,
                              timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    fields = {}
    for token in proc.stdout.split() if proc.returncode == 0 else []:
        key, sep, value = token.partition("=")
        if sep:
            fields.setdefault(key, value)
    return fields
