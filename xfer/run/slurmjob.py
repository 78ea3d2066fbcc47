"""What a trainer inside a SLURM job asks the controller about its own job: whether SLURM has requeued it, and
whether SLURM ordered the SIGTERM that stopped it.

When a node loses contact with the controller (its slurmd died, the network split), SLURM marks the node DOWN after
SlurmdTimeout and requeues its jobs, while their processes may go on running there. When the node comes back, the
controller has slurmd kill them at once (SIGKILL: no snapshot), and the requeued job starts again from the last
periodic snapshot. A trainer that sees its job requeued under it stops first, with a snapshot at the current
iteration, so the requeued run loses nothing. It asks every JOB_CHECK_SECONDS (one `scontrol` call); a controller
that does not answer (restarting) is no news.

A SIGTERM can also come that the controller did not order for this run: SLURM queues a kill for a run whose launch
failed (its node had just died) and delivers it when the node answers again, by job id, so it stops the job's next
run there. Left alone, that run ends with 143, the job FAILED and its dependents cancelled. The job script asks
`python -m xfer.run.slurmjob FOLDER` after any SIGTERM; it requeues the job when the controller still lists it
RUNNING at this run's restart count (scancel sets CANCELLED first, a time limit TIMEOUT; a requeue, pre-emption or
node failure raises the restart count). Such a stop is SLURM's, not a failure of the net, so it does not spend the
net's --retries; STRAY_LIMIT bounds it per campaign instead, so that a site that keeps killing jobs cannot loop.
"""
import os
import subprocess
import sys
import time

from ..progress import say
from . import failures

JOB_CHECK_SECONDS = float(os.environ.get("XFER_JOB_CHECK_SECONDS", "30"))
# SLURM's own MaxBatchRequeue default: the failed launches of a job it retries before holding it, so the late kills
# one job can get.
STRAY_LIMIT = 5


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


def stray_stop(environ=None):
    """A reason when the controller ordered no stop of the run in this environment (it lists the job RUNNING at
    this run's restart count), else None; None outside SLURM and when the controller does not answer."""
    run = JobWatch(environ)  # the job and restart count this run started with, read as the trainer reads them
    fields = job_fields(run.job) if run.job else {}
    if fields.get("JobState") != "RUNNING" or fields.get("Restarts") != str(run.restart):
        return None
    return (f"SIGTERM that SLURM did not order for this run (job {run.job} still RUNNING at restart {run.restart}: "
            "a kill meant for an earlier run of it)")


def main(argv=None) -> int:
    """`python -m xfer.run.slurmjob FOLDER`, run by the job script after a SIGTERM: prints why and exits 0 when
    the stop was stray and the net in FOLDER is under STRAY_LIMIT of them this campaign (it counts one), else 1."""
    (folder,) = argv if argv is not None else sys.argv[1:]
    reason = stray_stop()
    if not reason or not failures.take_retry(folder, STRAY_LIMIT, reason, kind="strays"):
        return 1
    say(f"{reason}; stray stop {len(failures.tries(folder, 'strays'))} of at most {STRAY_LIMIT}")
    return 0


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


if __name__ == "__main__":
    sys.exit(main())
