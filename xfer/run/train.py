"""`xfer train NET`: one net with the real `caffe train`, in its folder, resumable, never twice at once.

The command Caffe runs is the original README's (`caffe train -solver imagenet_solver.prototxt -weights ...`) with
cwd = the net folder; the kit adds what a long run needs: resume from the newest .solverstate, a lock held for as
long as Caffe runs (its child inherits it), a log per start (`<yymmdd_hhmmss>_<net>.log`, Caffe's glog output as
is), a small status file, and the check that frozen layers stayed frozen when a transfer net finishes.
"""
import ctypes
import fcntl
import os
import re
import signal
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path

from .. import caffeenv
from ..errors import XferError
from ..logs.tail import log_progress
from ..nets import layout, registry
from ..paths import write_text_atomic
from ..progress import say
from . import checks, failures, slurmjob, snapshots
from .netdir import (final_snapshot_path, is_finished, link_final_alias, net_dir, now_iso, read_status, solver_schedule,
                     write_status)
from .snapshots import resume_point

POLL_SECONDS = 2.0
# The environment variable a backend's job sets for the trainer it starts (a scheduler's job id): recorded in the
# net's status file as "job", whatever the scheduler.
JOB_ENV = "XFER_JOB"
PR_SET_PDEATHSIG = 1


# What stops a run: SIGTERM (scancel, pre-emption, a time limit, a batch system stopping a process group), SIGUSR1
# (the warning `sbatch --signal=B:USR1@<s>` sends before the time limit) and SIGINT (Ctrl-C).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)
TIME_LIMIT_SIGNAL = signal.SIGUSR1


class StopTraining(Exception):
    """A stop signal ended the run after Caffe snapshotted; `started_at`/`stopped_at`: the iteration it resumed
    from and the iteration of the snapshot it left."""

    def __init__(self, signum, started_at=0, stopped_at=None):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.started_at, self.stopped_at = signum, started_at, stopped_at

    @property
    def progressed(self) -> bool:
        return self.stopped_at is not None and self.stopped_at > self.started_at

    def exit_code(self) -> int:
        """128 + the signal, as a shell reports it; but 1 for a time-limit warning that came before the run got
        past its start: the SLURM job script requeues on 128 + SIGUSR1, and must not requeue a job forever when
        its time limit is too short to make progress."""
        if self.signum == TIME_LIMIT_SIGNAL and not self.progressed:
            return 1
        return 128 + self.signum


class TrainLock:
    """An flock on `<net>/.xfer_train.lock` holding "pid P on host H since T"; Caffe inherits the descriptor, so the
    lock lasts exactly as long as the training does, and the kernel drops it when both die (even by kill -9)."""

    def __init__(self, folder, net_name, tries=5):
        self.path, self.net_name, self.tries, self.handle = Path(folder) / layout.LOCK, net_name, max(1, tries), None

    def __enter__(self):
        self.handle = open(self.path, "a+")
        for attempt in range(self.tries):
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == self.tries - 1:
                    self.handle.seek(0)
                    holder = self.handle.read().strip() or "another process"
                    self.handle.close()
                    raise XferError(f"net {self.net_name} is being trained already ({holder})", path=self.path,
                                    fix="wait for that run to finish or stop it; the lock goes away with it")
                time.sleep(0.2)  # `xfer status` probes the lock for a moment; let it go
        self.handle.truncate(0)
        self.handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {now_iso()}\n")
        self.handle.flush()
        return self

    def fileno(self):
        return self.handle.fileno()

    def __exit__(self, *exc):
        self.handle.close()


def default_mode(cpu=False, gpu=None):
    """("cpu", None) or ("gpu", N): --cpu, --gpu N, else the first GPU when the Caffe build has CUDA."""
    if cpu and gpu is not None:
        raise XferError("--cpu and --gpu exclude each other")
    if cpu:
        return "cpu", None
    if gpu is not None:
        return "gpu", int(gpu)
    return ("gpu", 0) if caffeenv.build_info().get("cuda") else ("cpu", None)


def solver_for(folder, mode) -> str:
    """The solver file to pass: the rendered one on a GPU (with `-gpu N`); on a CPU a copy saying solver_mode CPU,
    because Caffe turns `solver_mode: GPU` into `-gpu 0`, which a CPU_ONLY build refuses."""
    if mode == "gpu":
        return layout.SOLVER
    text = (Path(folder) / layout.SOLVER).read_text()
    text = re.sub(r"^\s*(solver_mode|device_id)\s*:.*\n?", "", text, flags=re.M)
    write_text_atomic(Path(folder) / layout.CPU_SOLVER, text.rstrip("\n") + "\nsolver_mode: CPU\n")
    return layout.CPU_SOLVER


def suite_flag(net) -> str:
    return "" if net.suite == registry.default_suite() else f" --suite {net.suite}"


def check_rendered(net, folder) -> None:
    if not (folder / layout.SOLVER).is_file():
        raise XferError(f"net {net.name} is not rendered", path=folder / layout.SOLVER,
                        fix=f"run `xfer render --suite {net.suite}` first")


def check_base(net, results) -> None:
    """A transfer net starts from its base's final snapshot: refuse (naming the base) until it exists."""
    if not net.base:
        return
    base = registry.get(net.base, net.suite)
    if not is_finished(base, results):
        raise XferError(f"base net {base.name} of {net.name} has not finished: "
                        f"{final_snapshot_path(base, results)} does not exist",
                        fix=f"train the base first (`xfer train {base.name}{suite_flag(net)}`), "
                            "or use `xfer run`, which orders the graph")
    problem = snapshots.final_problem(base, results)
    if problem:
        raise XferError(f"the final weights of base net {base.name} {problem}; {net.name} does not start from them",
                        path=final_snapshot_path(base, results),
                        fix=f"`xfer run{suite_flag(net)} {net.name}` trains the base again from its newest whole "
                            "snapshot, then this net")


def start_args(net, folder, results) -> tuple:
    """Caffe's -snapshot/-weights arguments: resume when a .solverstate exists, else the init weights from surgery."""
    from . import surgery  # lazy for start-up: surgery loads numpy, which a net trained from its fillers never needs
    state = resume_point(folder)
    if state:
        return ["-snapshot", state.name], f"resumed from {state.name}"
    if not net.base and registry.RANDOM_FROZEN not in net.policy:
        return [], "from the fillers"
    init = folder / layout.INIT
    if not init.exists():
        surgery.surgery(folder, net=net)
    return ["-weights", init.name], f"from {init.name}"


def new_log_path(folder, name) -> Path:
    stamp = datetime.now().strftime("%y%m%d_%H%M%S")
    path, n = folder / f"{stamp}_{name}.log", 1
    while path.exists():
        n += 1
        path = folder / f"{stamp}_{name}.{n}.log"
    return path


def die_with_parent():
    """Run in the Caffe child: if the trainer dies (even by kill -9), Caffe gets SIGINT, snapshots and stops.
    SIGINT and SIGTERM get their default action back: a batch shell starts its background jobs with SIGINT
    ignored, and the trainer's SIGINT must reach Caffe (it kills a Caffe that has not yet installed its handler,
    which has nothing to save yet)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT)


def caffe_env() -> dict:
    """glog to stderr (the log file), every level: pycaffe's quiet setting must not leak into the training log."""
    return dict(os.environ, GLOG_logtostderr="1", GLOG_minloglevel="0")


class StopSignals:
    """While Caffe runs: a stop signal is recorded and passed on to Caffe as SIGINT (Caffe's -sigint_effect stop:
    it snapshots at the current iteration and exits). The trainer itself keeps waiting for Caffe, whatever else
    arrives: under SLURM the job's processes are killed as soon as the trainer (the job script's child) exits, so
    it must not leave before Caffe's snapshot is written."""

    def __init__(self):
        self.received, self.proc, self.previous = [], None, {}

    def __enter__(self):
        self.previous = {signum: signal.signal(signum, self.pass_on) for signum in STOP_SIGNALS}
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)

    def attach(self, proc) -> None:
        """Caffe has started: a signal that came while it was starting is passed on now."""
        self.proc = proc
        if self.received:
            self.stop_caffe()

    def pass_on(self, signum, frame) -> None:
        self.received.append(signum)
        self.stop_caffe()

    def stop_caffe(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)


def update_progress(folder, status_fields) -> None:
    progress = log_progress(folder)
    if progress.get("iteration") is not None:
        status_fields["iteration"] = progress["iteration"]
    if progress.get("test"):
        status_fields["test"], status_fields["test_iteration"] = progress["test"], progress["test_iteration"]
    write_status(folder, **status_fields)


def wait_or_update(proc, folder, fields, poll) -> None:
    try:
        proc.wait(timeout=poll)  # returns as soon as Caffe exits
    except subprocess.TimeoutExpired:
        update_progress(folder, fields)


def supervise(proc, folder, fields, poll, stops, finished=lambda: False, watch=None) -> int:
    """Wait for Caffe, refreshing the status file; Caffe's exit status, or StopTraining when a stop signal (see
    StopSignals) ended the run before it `finished()`, after recording where it stopped. A SLURM job requeued under
    the run (xfer/run/slurmjob.py) stops it as a SIGTERM would."""
    stops.attach(proc)
    watch = watch or slurmjob.JobWatch()
    while proc.poll() is None:
        wait_or_update(proc, folder, fields, poll)
        requeued = None if stops.received else watch.requeued()
        if requeued:
            fields["stop_reason"] = requeued
            stops.pass_on(signal.SIGTERM, None)
    if not stops.received or (proc.returncode == 0 and finished()):
        return proc.returncode
    started_at = command_iteration(fields["command"])
    state = resume_point(folder)
    stopped_at = int(layout.SNAPSHOT_RE.search(state.name).group(1)) if state else None
    fields.update(state="stopped", stop_signal=signal.Signals(stops.received[0]).name, stopped_at=stopped_at,
                  exit_code=proc.returncode)
    update_progress(folder, fields)
    raise StopTraining(stops.received[0], started_at, stopped_at)


def command_iteration(cmd) -> int:
    """The iteration a Caffe command starts at: that of its `-snapshot` solverstate, else 0."""
    if "-snapshot" in cmd:
        match = layout.SNAPSHOT_RE.search(cmd[cmd.index("-snapshot") + 1])
        if match:
            return int(match.group(1))
    return 0


def finish(net, folder, results, fields, quiet) -> int:
    """After Caffe exits cleanly at max_iter: check frozen layers (transfer and nolearn nets) and record it."""
    from . import surgery  # lazy for start-up, as in start_args
    fields["state"] = "finished"
    fields["final_checked"] = snapshots.final_record(final_snapshot_path(net, results))  # whole: checked just now
    link_final_alias(net, results)
    code = 0
    if net.frozen_layers():
        report = surgery.verify(net, results)
        fields["verify"] = {"ok": report["ok"], "snapshot": report["snapshot"], "checked": report["checked"],
                            "layers": {r["layer"]: r["detail"] for r in report["layers"]}}
        if not quiet or not report["ok"]:
            surgery.say_report(net, report)
        code = 0 if report["ok"] else 1
    update_progress(folder, fields)
    return code


def train(net, results=None, cpu=False, gpu=None, quiet=False, poll=POLL_SECONDS, force=False, retries=0,
          lock_wait=1.0) -> int:
    """Train one registry net to its max_iter (resuming), then verify its frozen layers; returns an exit code.
    force: restart a net whose snapshots came from an older version of its base (xfer/run/checks.py).
    retries: a failure that may pass (xfer/run/failures.py) exits RETRY_EXIT while the net has tries left.
    lock_wait: seconds to wait for a lock held by another run of the net (a requeued job's earlier run stopping)."""
    folder = net_dir(results, net.name)
    check_rendered(net, folder)
    tell = (lambda *a: None) if quiet else say
    if is_finished(net, results) and not checks.finished_but_stale(net, folder, force) \
            and not broken_final(net, results):
        tell(f"{net.name}: finished already ({final_snapshot_path(net, results).name})")
        link_final_alias(net, results)
        if net.frozen_layers() and "verify" not in read_status(folder):
            return finish(net, folder, results, {}, quiet)
        return 0
    check_base(net, results)
    with TrainLock(folder, net.name, tries=int(lock_wait / 0.2)) as lock:
        checks.before_caffe(net, folder, force)  # what Caffe's release build does not check: refused here
        code, fields = run_caffe(net, folder, results, default_mode(cpu, gpu), lock, poll, tell)
        broken = code == 0 and is_finished(net, results) and broken_final(net, results)
        if code == 0 and is_finished(net, results) and not broken:
            result = finish(net, folder, results, fields, quiet)
            tell(f"{net.name}: finished at iteration {fields['max_iter']}")
            return result
        verdict = run_verdict(code, broken, folder / fields["log"])
        fields.update(state="failed" if verdict else "stopped", exit_code=code)
        retry = bool(verdict and verdict.may_pass and failures.take_retry(folder, retries, verdict.reason))
        if verdict:
            fields.update(reason=verdict.reason, retries_used=len(failures.tries(folder)))
        update_progress(folder, fields)
    return after_failure(net, folder, verdict, retry, retries, code, tell)


def run_caffe(net, folder, results, device, lock, poll, tell) -> tuple:
    """Start `caffe train` (resuming or from the init weights) and supervise it; (exit status, status fields)."""
    mode, device = device
    weights, origin = start_args(net, folder, results)
    cmd = [caffeenv.tool("caffe"), "train", "-solver", solver_for(folder, mode)] + weights
    if mode == "gpu":
        cmd += ["-gpu", str(device)]
    log = new_log_path(folder, net.name)
    fields = {"net": net.name, "state": "running", "max_iter": solver_schedule(folder, net)["max_iter"],
              "log": log.name, "command": cmd, "started": now_iso(), "host": socket.gethostname(),
              "pid": os.getpid(), "mode": mode, "job": os.environ.get(JOB_ENV)}
    for stale in ("reason", "retries_used", "stop_signal", "stop_reason", "stopped_at", "exit_code"):
        fields[stale] = None  # the status of this run, not the last one's
    write_status(folder, **fields)
    tell(f"{net.name}: caffe train {origin} on {mode}{'' if device is None else ' ' + str(device)}, log {log}")
    with open(log, "ab") as log_file, StopSignals() as stops:
        proc = subprocess.Popen(cmd, cwd=folder, stdout=log_file, stderr=subprocess.STDOUT, env=caffe_env(),
                                pass_fds=(lock.fileno(),), preexec_fn=die_with_parent)
        return supervise(proc, folder, fields, poll, stops, lambda: is_finished(net, results)), fields


def broken_final(net, results):
    """Why the final snapshot of a net that looks finished cannot be used (then it is set aside, so the net trains
    again from its newest whole snapshot), or None when it is whole."""
    problem = snapshots.final_problem(net, results)
    if problem:
        final = final_snapshot_path(net, results)
        moved = snapshots.set_aside_final(net, results)
        say(f"{final}: {problem}; set aside as {moved[0].name if moved else '-'}: {net.name} trains again from its "
            "newest whole snapshot", err=True)
    return problem


def run_verdict(code, broken, log):
    """None for a run that stopped early without an error; else the failure rule's verdict."""
    if broken:
        return failures.Verdict(True, f"the final snapshot {broken}")  # Caffe wrote it, the disk cut it
    return None if code == 0 else failures.classify(code, log)


def after_failure(net, folder, verdict, retry, retries, code, tell) -> int:
    """The exit of a run that did not finish: 1 when Caffe stopped early without an error, RETRY_EXIT while a
    failure that may pass has tries left, else the error naming Caffe's reason and the log."""
    log = folder / read_status(folder).get("log", "")
    if verdict is None:
        tell(f"{net.name}: stopped before max_iter; run `xfer train {net.name}` again to resume")
        return 1
    used = len(failures.tries(folder))
    if retry:
        say(f"{net.name}: {verdict.reason}; this may pass: try {used} of {retries} again from the newest whole "
            "snapshot", err=True)
        return failures.RETRY_EXIT
    gave_up = f" (may pass, but its {retries} retries are spent)" if verdict.may_pass and retries else ""
    ended = f"exited with status {code}" if code else "ended"
    raise XferError(f"caffe train of {net.name} {ended}: {verdict.reason}{gave_up}", path=log,
                    fix="read the end of the log; fix the cause, then run the same command again to resume")
