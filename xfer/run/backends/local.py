"""The local backend of `xfer run`: up to one `xfer train` child per slot at once, a slot being a GPU or a share
of the CPU; bases before transfers, a net another process trains is waited for."""
import os
import signal
import subprocess
import time
from pathlib import Path

from ...errors import XferError
from ...nets import registry
from ...progress import say
from .. import failures
from ..netdir import is_finished, lock_holder, net_dir, read_status
from ..train import default_mode
from .base import Backend, flag, say_plan, train_command

POLL_SECONDS = 0.5  # cheap: a stat and an flock probe per pending net


class LocalRunner:
    """Up to len(devices) `xfer train` children at once; a device is a GPU number or None (a CPU slot)."""

    def __init__(self, todo, results, devices, poll=POLL_SECONDS, env=None, retries=failures.DEFAULT_RETRIES):
        self.pending, self.results, self.free, self.poll = list(todo), results, list(devices), poll
        self.retries = retries  # per net, for failures that may pass (xfer/run/failures.py)
        for net in self.pending:
            failures.reset(net_dir(results, net.name))  # a command typed again: every net gets its retries afresh
        self.env = dict(env or {})  # entries every trainer gets on top of this process's environment
        self.devices = list(devices)
        self.running, self.failed, self.finished, self.skipped = {}, [], [], []
        self.total, self.started = len(self.pending), {}

    def readiness(self, net) -> str:
        """"ready", "wait" (base or the net itself still training), or "skip" (a base failed or was skipped)."""
        ours = {n.name for n in self.pending} | set(self.running)  # a base of ours may look finished but be retrained
        for dep in registry.dependencies(net):
            if dep in self.failed or dep in self.skipped:
                return "skip"
            if dep in ours or not is_finished(registry.get(dep, net.suite), self.results):
                return "wait"
        return "wait" if lock_holder(net_dir(self.results, net.name)) else "ready"

    def start_ready(self) -> bool:
        """Start what can start; False when nothing pending can ever start (nothing runs, nothing is awaited)."""
        progress = bool(self.running)
        for net in list(self.pending):
            state = self.readiness(net)
            if state == "skip":
                self.pending.remove(net)
                self.skipped.append(net.name)
                say(f"{net.name}: not run, its base did not finish")
                continue
            if state == "wait":
                # waiting is progress only while something can still change: a child of ours or a foreign trainer
                awaited = [net.name] + registry.dependencies(net)
                progress = progress or any(lock_holder(net_dir(self.results, n)) for n in awaited)
                continue
            if not self.free:
                progress = True
                continue
            device = self.free.pop(0)
            proc = subprocess.Popen(train_command(net, Path(self.results), self.retries, device), env=self.child_env())
            self.pending.remove(net)
            self.running[net.name] = (net, proc, device)
            self.started[net.name] = time.monotonic()
            progress = True
            say(f"{net.name}: started on {'CPU' if device is None else f'GPU {device}'} (pid {proc.pid})")
        return progress

    def reap(self) -> None:
        for name, (net, proc, device) in list(self.running.items()):
            if proc.poll() is None:
                continue
            del self.running[name]
            self.free.append(device)
            took = f"{time.monotonic() - self.started.pop(name):.0f} s"
            outcome = failures.trainer_exit(proc.returncode)
            if outcome == "done" and is_finished(net, self.results):
                self.finished.append(name)
                say(f"{name}: finished in {took} {self.count()}")
            elif outcome == "retry" and self.retry(net, proc.returncode):
                self.pending.insert(0, net)  # its transfers keep waiting for it
            else:
                self.failed.append(name)
                say(f"{name}: FAILED (exit {proc.returncode}) after {took} {self.count()}; "
                      f"see {net_dir(self.results, name)}")

    def retry(self, net, returncode) -> bool:
        """After a failure that may pass: True when the net gets another try (the trainer counted it when it exited
        RETRY_EXIT; a trainer killed by a signal could not, so it is counted here)."""
        folder = net_dir(self.results, net.name)
        if returncode == failures.RETRY_EXIT:
            reason = read_status(folder).get("reason") or "a failure that may pass"
        else:
            reason = f"xfer train was killed by {failures.signal_name(-returncode)}"
            if not failures.take_retry(folder, self.retries, reason):
                return False
        say(f"{net.name}: {reason}; starting it again from its newest whole snapshot "
            f"(try {len(failures.tries(folder))} of {self.retries})")
        return True

    def child_env(self) -> dict:
        """CPU slots share the cores: each Caffe gets its share of BLAS threads (more would only fight over them),
        unless the user (or the runner's own `env`) set OPENBLAS_NUM_THREADS."""
        env = dict(os.environ, **self.env)
        cpu_slots = sum(1 for d in self.devices if d is None)
        if cpu_slots:
            env.setdefault("OPENBLAS_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // cpu_slots)))
        return env

    def count(self) -> str:
        """`[k/N]`: nets ended (finished or failed) of the N this runner was given."""
        return f"[{len(self.finished) + len(self.failed)}/{self.total}]"

    def run(self) -> int:
        previous = signal.signal(signal.SIGTERM, interrupt)  # a batch system's stop: as Ctrl-C
        try:
            while self.pending or self.running:
                if not self.start_ready():
                    for net in self.pending:
                        say(f"{net.name}: not run, its base has not finished and nothing is training it")
                    break
                time.sleep(self.poll)
                self.reap()
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM: pass it on (a signal to the process group reached them already; once more does no
            # harm) and wait until each trainer has had its Caffe snapshot and stop.
            for _, proc, _ in self.running.values():
                proc.send_signal(signal.SIGINT)
            for _, proc, _ in self.running.values():
                proc.wait()
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
        not_run = len(self.skipped) + len(self.pending)
        say(f"{len(self.finished)} finished, {len(self.failed)} failed, {not_run} not run")
        return 0 if not (self.failed or not_run) else 1


def interrupt(signum, frame):
    raise KeyboardInterrupt


def devices_for(gpus=None, cpu=False, slots=1) -> list:
    """The local slots: the GPUs of `gpus` ("0,1"), else the first GPU of a CUDA build, else `slots` CPU slots."""
    if gpus and cpu:
        raise XferError("--gpus and --cpu exclude each other")
    if gpus:
        try:
            return [int(g) for g in gpus.split(",") if g.strip()]
        except ValueError as exc:
            raise XferError(f"--gpus wants GPU numbers like 0,1 (got {gpus!r})") from exc
    mode, device = default_mode(cpu=cpu)
    if mode == "gpu":
        return [device]
    return [None] * max(1, slots)


class LocalBackend(Backend):
    """Trains on this machine: `submit` plans the slots, `wait` runs the children until the graph is done."""
    name = "local"
    flags = (flag("--slots", type=int, default=1, help="nets trained at once on the CPU (local backend)"),)

    def submit(self, todo, done, results):
        devices = devices_for(self.options.gpus, self.options.cpu, self.own["slots"])
        say_plan(todo, done, results)
        where = "CPU slots" if devices[0] is None else "GPUs " + ",".join(str(d) for d in devices)
        say(f"{len(todo)} to train, {len(devices)} at once on {where}")
        if self.options.dry_run or not todo:
            return None
        return LocalRunner(todo, results, devices, env=self.options.env, retries=self.options.retries)

    def wait(self, jobs, todo, results) -> int:
        return jobs.run() if jobs is not None else 0
