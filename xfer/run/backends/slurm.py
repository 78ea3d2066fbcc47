"""The SLURM backend of `xfer run`: one batch job per net, transfers held back with `afterok` on their base's job.

Each job runs `xfer train NET` in the net folder, so everything the local runner guarantees holds on the cluster too:
a requeued (pre-empted, node-failed) job resumes from the newest .solverstate, a net never trains twice at once, and
a finished transfer net verifies its frozen layers. The job id is recorded in `<net>/xfer_slurm.json`, so running
`xfer run --backend slurm` again skips nets that are queued or running and only submits what is missing.
"""
import json
import os
import shlex
import shutil
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

from ...errors import XferError
from ...nets import layout, registry
from ...paths import write_text_atomic
from ...progress import say
from .. import failures
from ..netdir import is_finished, lock_holder, net_dir, now_iso, read_json
from ..train import JOB_ENV, default_mode
from .base import Backend, flag, say_plan, train_command

JOB_PREFIX = "xfer-"
# The time-limit warning comes this many seconds before the limit (sbatch --signal=B:USR1@DEFAULT_LEAD; SLURM may
# send it up to a minute earlier): time for Caffe to finish its iteration or test batch and to write a snapshot of
# a paper net (~0.5 GB with the solver state) to shared storage, at the cost of 5 minutes of a long allocation.
DEFAULT_LEAD = 300
TIME_LIMIT_EXIT = 128 + int(signal.SIGUSR1)  # xfer train's exit status after a time-limit stop that made progress
JOB_SCRIPT = string.Template("""#!/bin/bash
# xfer: train $net ($suite suite); a requeued job resumes from the newest snapshot.
echo "xfer: job $$SLURM_JOB_ID (restart $${SLURM_RESTART_COUNT:-0}) on $$(hostname)"
export $job_env="$$SLURM_JOB_ID"  # the job xfer train records in the net's status file
# SLURM sends USR1 to this shell before the time limit (sbatch --signal=B:USR1@SECONDS), and TERM to every process
# of the job on scancel, on pre-emption and at the limit. xfer train passes either on to Caffe, which snapshots at
# the current iteration and exits; this shell waits until xfer train has gone.
trap 'kill -USR1 "$$pid" 2>/dev/null' USR1
trap 'term=1; kill -TERM "$$pid" 2>/dev/null' TERM
$train &
pid=$$!
wait "$$pid"
while kill -0 "$$pid" 2>/dev/null; do wait "$$pid"; done  # a trapped signal ends `wait` early
wait "$$pid"; status=$$?  # xfer train's own exit status
# $requeue: stopped by the time-limit warning with a snapshot past where this run started; $retry: a failure that
# may pass (xfer/run/failures.py), with tries left. Requeue the job (same id, so its dependents keep waiting for
# it); the next run resumes from the newest whole snapshot. The controller may be restarting: ask for 5 minutes.
requeue() {
  echo "xfer: $$1; requeueing job $$SLURM_JOB_ID"
  for _ in $$(seq 1 60); do scontrol requeue "$$SLURM_JOB_ID" && exit 0; sleep 5; done
}
[ "$$status" -eq $requeue ] && requeue "stopped before the time limit"
[ "$$status" -eq $retry ] && requeue "a failure that may pass (xfer train exit $retry)"
# A SIGTERM the controller did not order for this run (a kill meant for an earlier run, delivered late): requeue
# (xfer/run/slurmjob.py). After scancel, a time limit or a requeue it exits 1 and the job ends as such.
[ -n "$${term:-}" ] && reason=$$($stray) && requeue "$$reason"
exit "$$status"
""")
# A requeued job can start while the processes of its earlier run, on a node that lost contact with the controller,
# are still stopping (Caffe snapshots first): its trainer waits this long for their lock.
LOCK_WAIT = 300
ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING",
          "SUSPENDED", "STAGE_OUT", "SIGNALING"}


def slurm_reachable() -> bool:
    configured = bool(os.environ.get("SLURM_CONF")) or Path("/etc/slurm/slurm.conf").exists()
    return bool(shutil.which("squeue")) and configured


def queue_states(strict=False) -> dict:
    """{job id: state} of the kit's jobs in the queue (finished ones stay listed for MinJobAge); {} without SLURM.
    strict: a controller that does not answer (restarting, down) is an error instead of an empty queue, for
    `xfer run`, which must not submit again what is queued."""
    if not slurm_reachable():
        return {}
    try:
        proc = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i|%j|%T"], capture_output=True, text=True,
                              timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        proc = subprocess.CompletedProcess([], 1, "", str(exc))
    if proc.returncode != 0:
        if strict:
            raise XferError(f"the SLURM controller does not answer: {proc.stderr.strip()}",
                            fix="wait until `scontrol ping` says UP (a restarting slurmctld keeps its jobs), then "
                                "run the same command again")
        return {}
    states = {}
    for line in proc.stdout.splitlines():
        job, name, state = (line.split("|") + ["", ""])[:3]
        if name.startswith(JOB_PREFIX):
            states[job.strip()] = state.strip()
    return states


def job_script(net, results, mode, retries=failures.DEFAULT_RETRIES) -> str:
    """The batch script (JOB_SCRIPT): `xfer train` of this kit's Python, with the stop signals passed on and the
    requeue after a time-limit stop, a failure that may pass or a SIGTERM that SLURM did not order for this run
    (xfer/run/slurmjob.py); a requeued job runs it again and resumes."""
    device = 0 if mode == "gpu" else None  # SLURM maps the granted GPU to device 0
    train = train_command(net, Path(results).resolve(), retries, device, extra=["--lock-wait", str(LOCK_WAIT)])
    stray = [sys.executable, "-m", "xfer.run.slurmjob", str(net_dir(Path(results).resolve(), net.name))]
    return JOB_SCRIPT.substitute(net=net.name, suite=net.suite, train=shlex.join(train), requeue=TIME_LIMIT_EXIT,
                                 retry=failures.RETRY_EXIT, job_env=JOB_ENV, stray=shlex.join(stray))


def time_seconds(text):
    """Seconds of a SLURM time limit (`M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`); None for none/INFINITE."""
    if not text or text.upper() in ("INFINITE", "UNLIMITED"):
        return None
    days, dash, clock = text.rpartition("-")
    try:
        parts = [int(part) for part in clock.split(":")]
        days = int(days) if dash else 0
    except ValueError:
        parts = []
    if not 1 <= len(parts) <= 3 or min(parts) < 0 or days < 0:
        raise XferError(f"--time {text!r} is not a SLURM time limit",
                        fix="write minutes (90), H:M:S (1:30:00) or D-H:M:S (3-00:00:00)")
    if dash:  # D-H, D-H:M, D-H:M:S
        hours, minutes, seconds = (parts + [0, 0])[:3]
    else:  # M, M:S, H:M:S
        hours, minutes, seconds = {1: (0, parts[0], 0), 2: (0, *parts), 3: tuple(parts)}[len(parts)]
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def signal_lead(time_limit, lead=None) -> int:
    """Seconds before the time limit at which the job is told to stop (0: never). The default is DEFAULT_LEAD, but
    at most a sixth of a shorter time limit, so that a run makes progress before it is told to stop."""
    limit = time_seconds(time_limit)
    if lead is None:
        return DEFAULT_LEAD if limit is None else min(DEFAULT_LEAD, limit // 6)
    if lead < 0 or (limit is not None and lead and lead >= limit):
        raise XferError(f"--signal-lead {lead} does not fit the time limit {time_limit}",
                        fix="give a number of seconds below the time limit (0: no warning before it)")
    return lead


def sbatch_command(net, folder, dependency_ids, mode, options) -> list:
    """The exact sbatch argument list for one net."""
    cmd = ["sbatch", "--parsable", f"--job-name={JOB_PREFIX}{net.name}", f"--chdir={folder}",
           f"--output={folder / layout.SLURM_OUTPUT}", "--open-mode=append", "--requeue", "--kill-on-invalid-dep=yes"]
    if dependency_ids:
        cmd.append("--dependency=afterok:" + ":".join(dependency_ids))
    if mode == "gpu":
        cmd.append("--gres=gpu:1")
    if options.get("cpus_per_task"):
        cmd.append(f"--cpus-per-task={options['cpus_per_task']}")
    if options.get("partition"):
        cmd.append(f"--partition={options['partition']}")
    if options.get("time"):
        cmd.append(f"--time={options['time']}")
    lead = signal_lead(options.get("time"), options.get("signal_lead"))
    if lead:
        cmd.append(f"--signal=B:USR1@{lead}")
    cmd += list(options.get("extra") or [])
    cmd.append(str(folder / layout.SLURM_SCRIPT))
    return cmd


def queued_job(folder, queue):
    """The job id recorded for this net when that job is still queued or running, else None."""
    record = read_json(Path(folder) / layout.SLURM_RECORD)
    job = str(record.get("job_id", ""))
    return job if job and queue.get(job) in ACTIVE else None


def sbatch(cmd) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError as exc:
        raise XferError("sbatch not found", fix="install slurm-client, or use --backend local") from exc
    except subprocess.TimeoutExpired as exc:
        raise XferError("sbatch did not answer in 60 s", fix="check the controller with `sinfo`") from exc
    job = proc.stdout.strip().split(";")[0]
    if proc.returncode != 0 or not job.isdigit():
        message = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
        raise XferError(f"sbatch refused the job: {message}\n  command: {shlex.join(cmd)}",
                        fix="check the partition/gres options and the controller (`sinfo`, `scontrol ping`)")
    return job


def submit(todo, results, mode, options, dry_run=False) -> dict:
    """Submit one job per net of `todo` (bases first); returns {net name: job id}. Skips nets already queued."""
    queue = {} if dry_run else queue_states(strict=True)
    jobs, skipped = {}, set()
    for net in todo:
        folder = net_dir(results, net.name).resolve()
        waiting = [d for d in registry.dependencies(net) if d in skipped]
        if waiting:
            skipped.add(net.name)
            say(f"{net.name}: not submitted: its base {waiting[0]} is not under SLURM's control; run again later")
            continue
        existing = queued_job(folder, queue)  # before the lock: a running job holds it, and its dependents wait on it
        if existing:
            jobs[net.name] = existing
            say(f"{net.name}: queued already as job {existing} ({queue[existing].lower()})")
            continue
        holder = lock_holder(folder)
        if holder:
            skipped.add(net.name)
            say(f"{net.name}: training outside SLURM ({holder}); not submitted")
            continue
        base_jobs = [jobs[d] for d in registry.dependencies(net) if d in jobs]
        missing = [d for d in registry.dependencies(net)
                   if d not in jobs and not is_finished(registry.get(d, net.suite), results)]
        if missing:
            raise XferError(f"base net {missing[0]} of {net.name} is neither finished nor queued",
                            fix=f"include it: xfer run --backend slurm {missing[0]} {net.name}")
        script = job_script(net, results, mode, options.get("retries", failures.DEFAULT_RETRIES))
        if dry_run:
            cmd = sbatch_command(net, folder, [f"<job of {d}>" for d in registry.dependencies(net) if d in jobs],
                                 mode, options)
            say(f"# {net.name}: {folder / layout.SLURM_SCRIPT}\n{script}{shlex.join(cmd)}\n")
            jobs[net.name] = f"<job of {net.name}>"
            continue
        cmd = sbatch_command(net, folder, base_jobs, mode, options)
        write_text_atomic(folder / layout.SLURM_SCRIPT, script)
        os.chmod(folder / layout.SLURM_SCRIPT, 0o755)
        failures.reset(folder)  # a command typed again: the net gets its retries afresh
        job = sbatch(cmd)
        write_text_atomic(folder / layout.SLURM_RECORD, json.dumps(
            {"job_id": job, "submitted": now_iso(), "command": cmd, "depends_on": base_jobs}, indent=1) + "\n")
        jobs[net.name] = job
        say(f"{net.name}: submitted job {job}" + (f" (after {', '.join(base_jobs)})" if base_jobs else ""))
    return jobs


def wait(jobs, poll=3.0) -> dict:
    """Block until none of the jobs is queued or running; returns their last seen states."""
    last = {}
    while True:
        queue = queue_states()
        active = [job for job in jobs.values() if queue.get(job) in ACTIVE]
        last.update({job: queue.get(job, "GONE") for job in jobs.values()})
        if not active:
            return last
        time.sleep(poll)


class SlurmBackend(Backend):
    """One batch job per net (`submit`); `wait` blocks only with --wait, then counts the nets that finished."""
    name = "slurm"
    column = "slurm job"
    flags = (
        flag("--wait", action="store_true", help="slurm: wait until the submitted jobs leave the queue"),
        flag("--partition", help="slurm partition"),
        flag("--time", help="slurm time limit per job, e.g. 3-00:00:00 (requeued jobs resume)"),
        flag("--signal-lead", type=int, metavar="SECONDS",
             help="slurm: stop this long before the time limit, snapshot and requeue (default 300, at most a sixth "
                  "of --time; 0: no warning, the limit's TERM still snapshots but ends the job)"),
        flag("--cpus-per-task", type=int, help="slurm CPUs per job"),
        flag("--sbatch-arg", action="append", default=[], metavar="ARG", help="extra sbatch argument (repeatable)"),
    )

    def submit(self, todo, done, results):
        opts, own = self.options, self.own
        mode = "gpu" if opts.gpus else default_mode(cpu=opts.cpu)[0]
        if opts.dry_run:
            say_plan(todo, done, results)
        options = {"partition": own["partition"], "time": own["time"], "cpus_per_task": own["cpus_per_task"],
                   "signal_lead": own["signal_lead"], "extra": own["sbatch_arg"], "retries": opts.retries}
        return submit(todo, results, mode, options, dry_run=opts.dry_run)

    def wait(self, jobs, todo, results) -> int:
        if not (self.own["wait"] and jobs and not self.options.dry_run):
            return 0
        wait(jobs)
        unfinished = [net.name for net in todo if not is_finished(net, results)]
        say(f"{len(todo) - len(unfinished)} finished" + (f"; not finished: {', '.join(unfinished)}"
                                                           if unfinished else ""))
        return 1 if unfinished else 0

    def queue(self) -> dict:
        return queue_states()

    def job_state(self, folder, queue):
        """("<job id>[ <SLURM state>]", the net's state while the job is in the queue, else None), or None when
        the folder records no SLURM job."""
        record = read_json(Path(folder) / layout.SLURM_RECORD)
        if not record:
            return None
        queued = (queue or {}).get(str(record.get("job_id")))
        job = f"{record['job_id']}" + (f" {queued}" if queued else "")
        state = ("queued" if queued in ("PENDING", "CONFIGURING") else queued.lower()) if queued else None
        return job, state
