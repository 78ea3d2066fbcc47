"""`xfer run`: the whole graph of nets, bases before transfers, on local slots/GPUs or as SLURM jobs.

The graph comes from the registry (a net depends on its base). Finished nets are skipped, so the runner can be
killed at any moment and run again: each net's own `xfer train` resumes from its newest snapshot, and its lock keeps
a net that is still training elsewhere from starting twice (the runner waits for it instead).
"""
import os
import subprocess
import sys
import time
from pathlib import Path

from . import registry, slurm
from .errors import XferError
from .status import SOLVER_FILE, is_finished, lock_holder, net_dir, register as register_status, results_root
from .train import default_mode

POLL_SECONDS = 0.5  # cheap: a stat and an flock probe per pending net


def plan(patterns, suite, results) -> tuple:
    """(nets to train in dependency order, nets finished already). Unfinished bases of selected nets are added."""
    selected = registry.match(patterns, suite)
    if patterns and not selected:
        raise XferError(f"no net of the {suite} suite matches {' '.join(patterns)}",
                        fix=f"see the names with `xfer status --suite {suite}`")
    wanted = {net.name for net in selected}
    stack = list(selected)
    while stack:
        for dep in registry.dependencies(stack.pop()):
            base = registry.get(dep, suite)
            if dep not in wanted and not is_finished(base, results):
                wanted.add(dep)
                stack.append(base)
    ordered = order_by_dependencies([net for net in registry.nets(suite) if net.name in wanted])
    todo = [net for net in ordered if not is_finished(net, results)]
    done = [net for net in ordered if is_finished(net, results)]
    return todo, done


def order_by_dependencies(nets) -> list:
    """Bases before the nets that need them, otherwise registry order."""
    placed, out, remaining = set(), [], list(nets)
    names = {net.name for net in nets}
    while remaining:
        ready = [n for n in remaining if all(d in placed or d not in names for d in registry.dependencies(n))]
        if not ready:
            raise XferError("the dependency graph has a cycle: " + ", ".join(n.name for n in remaining))
        for net in ready:
            placed.add(net.name)
            out.append(net)
        remaining = [n for n in remaining if n.name not in placed]
    return out


def train_command(net, results, device) -> list:
    cmd = [sys.executable, "-m", "xfer.cli", "train", net.name, "--suite", net.suite,
           "--results", str(Path(results)), "--quiet"]
    return cmd + (["--cpu"] if device is None else ["--gpu", str(device)])


class LocalRunner:
    """Up to len(devices) `xfer train` children at once; a device is a GPU number or None (a CPU slot)."""

    def __init__(self, todo, results, devices, poll=POLL_SECONDS):
        self.pending, self.results, self.free, self.poll = list(todo), results, list(devices), poll
        self.devices = list(devices)
        self.running, self.failed, self.finished, self.skipped = {}, [], [], []
        self.total, self.started = len(self.pending), {}

    def readiness(self, net) -> str:
        """"ready", "wait" (base or the net itself still training), or "skip" (a base failed or was skipped)."""
        for dep in registry.dependencies(net):
            if dep in self.failed or dep in self.skipped:
                return "skip"
            if not is_finished(registry.get(dep, net.suite), self.results):
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
                print(f"{net.name}: not run, its base did not finish", flush=True)
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
            proc = subprocess.Popen(train_command(net, self.results, device), env=self.child_env())
            self.pending.remove(net)
            self.running[net.name] = (net, proc, device)
            self.started[net.name] = time.monotonic()
            progress = True
            print(f"{net.name}: started on {'CPU' if device is None else f'GPU {device}'} (pid {proc.pid})", flush=True)
        return progress

    def reap(self) -> None:
        for name, (net, proc, device) in list(self.running.items()):
            if proc.poll() is None:
                continue
            del self.running[name]
            self.free.append(device)
            took = f"{time.monotonic() - self.started.pop(name):.0f} s"
            if proc.returncode == 0 and is_finished(net, self.results):
                self.finished.append(name)
                print(f"{name}: finished in {took} {self.count()}", flush=True)
            else:
                self.failed.append(name)
                print(f"{name}: FAILED (exit {proc.returncode}) after {took} {self.count()}; "
                      f"see {net_dir(self.results, name)}", flush=True)

    def child_env(self) -> dict:
        """CPU slots share the cores: each Caffe gets its share of BLAS threads (more would only fight over them),
        unless the user set OPENBLAS_NUM_THREADS."""
        env = dict(os.environ)
        cpu_slots = sum(1 for d in self.devices if d is None)
        if cpu_slots:
            env.setdefault("OPENBLAS_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // cpu_slots)))
        return env

    def count(self) -> str:
        """`[k/N]`: nets ended (finished or failed) of the N this runner was given."""
        return f"[{len(self.finished) + len(self.failed)}/{self.total}]"

    def run(self) -> int:
        try:
            while self.pending or self.running:
                if not self.start_ready():
                    for net in self.pending:
                        print(f"{net.name}: not run, its base has not finished and nothing is training it")
                    break
                time.sleep(self.poll)
                self.reap()
        except KeyboardInterrupt:
            # Ctrl-C reached the children too (same process group): each Caffe snapshots and stops.
            for _, proc, _ in self.running.values():
                proc.wait()
            raise
        not_run = len(self.skipped) + len(self.pending)
        print(f"{len(self.finished)} finished, {len(self.failed)} failed, {not_run} not run")
        return 0 if not (self.failed or not_run) else 1


def devices_for(args) -> list:
    if args.gpus and args.cpu:
        raise XferError("--gpus and --cpu exclude each other")
    if args.gpus:
        try:
            return [int(g) for g in args.gpus.split(",") if g.strip()]
        except ValueError as exc:
            raise XferError(f"--gpus wants GPU numbers like 0,1 (got {args.gpus!r})") from exc
    mode, device = default_mode(cpu=args.cpu)
    if mode == "gpu":
        return [device]
    return [None] * max(1, args.slots)


def print_plan(todo, done, backend, devices, results) -> None:
    for net in done:
        print(f"skip   {net.name} (finished)")
    for net in todo:
        deps = registry.dependencies(net)
        rendered = (net_dir(results, net.name) / SOLVER_FILE).is_file()
        print(f"train  {net.name}" + (f" after {', '.join(deps)}" if deps else "")
              + ("" if rendered else " (NOT RENDERED: run `xfer render` first)"))
    if backend == "local":
        where = "CPU slots" if devices[0] is None else "GPUs " + ",".join(str(d) for d in devices)
        print(f"{len(todo)} to train, {len(devices)} at once on {where}")


def check_rendered(todo, results) -> None:
    missing = [net.name for net in todo if not (net_dir(results, net.name) / SOLVER_FILE).is_file()]
    if missing:
        raise XferError(f"{len(missing)} net(s) are not rendered: {', '.join(missing[:5])}"
                        + (" ..." if len(missing) > 5 else ""), path=net_dir(results, missing[0]),
                        fix=f"run `xfer render --suite {todo[0].suite}` first")


def run_run(args) -> int:
    results = results_root(args.results, args.suite)
    todo, done = plan(args.patterns, args.suite, results)
    if not args.dry_run:
        check_rendered(todo, results)
    if args.backend == "slurm":
        mode = "gpu" if args.gpus else default_mode(cpu=args.cpu)[0]
        if args.dry_run:
            print_plan(todo, done, "slurm", [], results)
        options = {"partition": args.partition, "time": args.time, "cpus_per_task": args.cpus_per_task,
                   "extra": args.sbatch_arg}
        jobs = slurm.submit(todo, results, mode, options, dry_run=args.dry_run)
        if args.wait and jobs and not args.dry_run:
            slurm.wait(jobs)
            unfinished = [net.name for net in todo if not is_finished(net, results)]
            print(f"{len(todo) - len(unfinished)} finished" + (f"; not finished: {', '.join(unfinished)}"
                                                                 if unfinished else ""))
            return 1 if unfinished else 0
        return 0
    devices = devices_for(args)
    print_plan(todo, done, "local", devices, results)
    if args.dry_run or not todo:
        return 0
    return LocalRunner(todo, results, devices).run()


def register(sub):
    p = sub.add_parser("run", help="train the graph of nets (bases first) locally or on SLURM; re-runnable")
    p.add_argument("patterns", nargs="*", metavar="NET_PATTERN", help="fnmatch patterns of net names (default all)")
    p.add_argument("--suite", default="paper", choices=registry.SUITES)
    p.add_argument("--results", help="the results tree (default: results/ of the kit)")
    p.add_argument("--backend", default="local", choices=("local", "slurm"))
    p.add_argument("--slots", type=int, default=1, help="nets trained at once on the CPU (local backend)")
    p.add_argument("--gpus", help="GPUs to use, one net per GPU, e.g. 0,1 (slurm: ask each job for a GPU)")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even when Caffe has CUDA")
    p.add_argument("--dry-run", action="store_true", help="print the plan (and the sbatch commands and scripts)")
    p.add_argument("--wait", action="store_true", help="slurm: wait until the submitted jobs leave the queue")
    p.add_argument("--partition", help="slurm partition")
    p.add_argument("--time", help="slurm time limit per job, e.g. 3-00:00:00 (requeued jobs resume)")
    p.add_argument("--cpus-per-task", type=int, help="slurm CPUs per job")
    p.add_argument("--sbatch-arg", action="append", default=[], metavar="ARG", help="extra sbatch argument (repeatable)")
    p.set_defaults(func=run_run)
    register_status(sub)
