"""`xfer rehearse`: the paper's pipeline at full size on an ImageNet-shaped tree, in minutes, before a real run.

It runs the commands a user runs, as subprocesses (`python -m xfer.cli ...`), each into a log under <out>/logs/:
  images   1000 WordNet classes, a few JPEGs each, ILSVRC val names       (xfer.studies.imagenet_shaped)
  lists    `xfer imagenet-lists --train --val --val-labels`
  splits   `xfer splits` (random halves, natman from WordNet, reduced), then the same into a second data folder
  db       `xfer db` for the datasets (and means) the rehearsed nets read
  render   `xfer render --suite paper --set ...`: the real CaffeNet (227 crops, fc8 of 1000), a short schedule
  check    `xfer render --check`: the folders equal registry + recorded overrides
  run      `xfer run` on one net of every paper kind (locally, on GPUs or as SLURM jobs)
  status, summary, plot
then checks what the kit promises (rehearsal_checks.py) and prints one table: stages, seconds, checks.
Every stage keeps what is done, so a second `xfer rehearse` only re-checks.
"""
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import rehearsal_checks as checks
from . import imagenet_shaped
from ..errors import XferError
from ..logs.tail import read_tail
from ..nets import registry
from ..paths import cache_dir, write_text_atomic
from ..progress import say

SUITE = "paper"
# One net of every kind the paper trains: a base pair of split 0, a transfer (frozen 1..3) and a fine-tuned transfer
# of it, a natman base and transfer, a net with random frozen layers, netbase and a reduced-volume net.
NETS = ("half0A", "half0B", "transfer0A0B_1_3", "transfer-ft0A0B_1_3", "halfnatmanA", "transfernatmanAB_1_3",
        "nolearn_1_3", "netbase", "reduced-0001")
# A short schedule for the real CaffeNet: 6 iterations of 8 images, tests of 2 x 10 images at 0, 3 and 6, the lr
# stepping at 4, one snapshot at the end (each is ~470 MB with the solver state).
SCHEDULE = {"max_iter": 6, "snapshot": 6, "test_interval": 3, "test_iter": 2, "display": 1, "base_lr": 0.001,
            "stepsize": 4, "train_batch": 8, "val_batch": 10}


@dataclass
class Rehearsal:
    out: Path
    nets: tuple = NETS
    schedule: dict = field(default_factory=lambda: dict(SCHEDULE))
    backend: str = "local"
    gpus: "str | None" = None
    slots: int = 1
    run_args: tuple = ()              # extra `xfer run` arguments (e.g. --partition P for SLURM)
    train_per_class: int = imagenet_shaped.TRAIN_PER_CLASS
    val_per_class: int = imagenet_shaped.VAL_PER_CLASS
    stages: list = field(default_factory=list)   # (stage, seconds, what it did)
    results: list = field(default_factory=list)  # (check, ok, detail)

    @property
    def data(self) -> Path:
        return self.out / "data"

    @property
    def results_dir(self) -> Path:
        return self.out / "results"


def default_out() -> Path:
    return cache_dir() / "rehearsal"


def xfer_command(*args) -> list:
    return [sys.executable, "-m", "xfer.cli", *map(str, args)]


def run_xfer(reh, stage, *args) -> str:
    """One `xfer` command, its output into <out>/logs/<stage>.log; an XferError naming the log when it fails."""
    log = reh.out / "logs" / f"{stage}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as handle:
        handle.write("$ xfer " + " ".join(map(str, args)) + "\n")
        handle.flush()
        code = subprocess.run(xfer_command(*args), stdout=handle, stderr=subprocess.STDOUT).returncode
    if code != 0:
        last = [line for line in read_tail(log, 8192) if line.strip()][-3:]
        raise XferError(f"stage {stage}: `xfer {args[0]}` exited with status {code}: " + " | ".join(last),
                        path=log, fix="read the log; fix the cause and run `xfer rehearse` again (done stages stay)")
    return log.read_text().split("\n", 1)[1]  # the command's output, without the `$ xfer ...` line


def stage(reh, name, what, work):
    """Run one stage with a progress line before and after; record its time."""
    say(f"[{len(reh.stages) + 1}] {name}: {what}")
    started = time.monotonic()
    detail = work()
    seconds = time.monotonic() - started
    reh.stages.append((name, seconds, detail or what))
    say(f"    {name} done in {seconds:.1f} s" + (f": {detail}" if detail else ""))


def make_images(reh) -> str:
    counts = imagenet_shaped.write_tree(reh.out / "images", reh.train_per_class, reh.val_per_class)
    return (f"{counts['classes']} classes, {counts['train']} train / {counts['valid']} val JPEGs"
            + (" (kept from a previous rehearsal)" if counts["reused"] else ""))


def list_args(reh, data) -> list:
    images = reh.out / "images"
    return ["imagenet-lists", "--train", images / "train", "--val", images / "val", "--val-labels",
            images / "val.txt", "--data-dir", data]


def make_lists(reh) -> str:
    return run_xfer(reh, "lists", *list_args(reh, reh.data)).strip().splitlines()[-1]


def make_splits(reh) -> str:
    first = run_xfer(reh, "splits", "splits", "--data-dir", reh.data).strip().splitlines()[-1]
    again = reh.out / "data-again"  # the second run of both list stages, from nothing, for the md5 check
    shutil.rmtree(again, ignore_errors=True)
    run_xfer(reh, "lists-again", *list_args(reh, again))
    run_xfer(reh, "splits-again", "splits", "--data-dir", again)
    return f"{first}; a second run into {again.name}/"


def make_databases(reh, nets) -> str:
    names = registry.datasets_of(nets)
    run_xfer(reh, "db", "db", "--data-dir", reh.data, *names)
    return f"{len(names)} LMDBs with their means"


def set_args(schedule) -> list:
    return [arg for key, value in schedule.items() for arg in ("--set", f"{key}={value}")]


def render_nets(reh) -> str:
    common = ["--suite", SUITE, "--out", reh.results_dir, "--data-dir", reh.data, *reh.nets]
    run_xfer(reh, "render", "render", *common, *set_args(reh.schedule))
    report = run_xfer(reh, "render-check", "render", "--check", *common)
    return f"{len(reh.nets)} nets; --check: {report.strip().splitlines()[-1]}"


def device_args(reh) -> list:
    """GPUs only when asked for: a rehearsal proves the CPU path unless --gpu/--gpus says otherwise."""
    return ["--gpus", reh.gpus] if reh.gpus else ["--cpu"]


def train_nets(reh) -> str:
    args = ["run", "--suite", SUITE, "--results", reh.results_dir, "--scheduler", reh.backend, *device_args(reh)]
    if reh.backend == "local":
        args += ["--slots", reh.slots]
    else:
        args += ["--wait"]
    run_xfer(reh, "run", *args, *reh.run_args, *reh.nets)
    where = f"GPUs {reh.gpus}" if reh.gpus else "CPU"
    return f"{len(reh.nets)} nets on {reh.backend} ({where})"


def report_stages(reh) -> dict:
    """status, summary and plot, as a user runs them; their machine-readable outputs for the checks."""
    common = ["--results", reh.results_dir]
    status = json.loads(run_xfer(reh, "status", "status", "--suite", SUITE, "--json", *common, *reh.nets))
    summary = json.loads(run_xfer(reh, "summary", "summary", "--format", "json", "--no-cache", *common, *reh.nets))
    figures = run_xfer(reh, "plot", "plot", "--out", reh.out / "figures", *common, *reh.nets).split()
    return {"status": status, "summary": summary, "figures": [f for f in figures if Path(f).is_file()]}


def table(reh) -> str:
    lines = [f"{'stage':<10} {'seconds':>8}  what", *(f"{name:<10} {seconds:8.1f}  {what}"
                                                        for name, seconds, what in reh.stages)]
    total = sum(seconds for _, seconds, _ in reh.stages)
    lines += [f"{'total':<10} {total:8.1f}", "", "checks:"]
    lines += [f"  {'ok  ' if ok else 'FAIL'}  {name}: {detail}" for name, ok, detail in reh.results]
    return "\n".join(lines)


def write_record(reh, seconds) -> None:
    record = {"nets": list(reh.nets), "schedule": reh.schedule, "backend": reh.backend, "gpus": reh.gpus,
              "seconds": round(seconds, 1),
              "stages": [{"stage": n, "seconds": round(s, 1), "what": w} for n, s, w in reh.stages],
              "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in reh.results]}
    write_text_atomic(reh.out / "rehearse.json", json.dumps(record, indent=1) + "\n")


def with_bases(names) -> tuple:
    """The nets and, before each, the base it starts from (render, run and the mean check need the base's folder)."""
    out = []
    for name in names:
        for needed in registry.dependencies(registry.get(name, SUITE)) + [name]:
            if needed not in out:
                out.append(needed)
    return tuple(out)


def rehearse(reh) -> int:
    """The whole rehearsal; 0 when every stage ran and every check passed."""
    reh.out, reh.nets = Path(reh.out), with_bases(reh.nets)
    nets = [registry.get(name, SUITE) for name in reh.nets]
    started = time.monotonic()
    say(f"xfer rehearse: {len(nets)} paper nets on an ImageNet-shaped tree in {reh.out} ({reh.backend})")
    stage(reh, "images", "an ImageNet-shaped image tree", lambda: make_images(reh))
    stage(reh, "lists", "xfer imagenet-lists", lambda: make_lists(reh))
    stage(reh, "splits", "xfer splits, twice", lambda: make_splits(reh))
    stage(reh, "db", "xfer db", lambda: make_databases(reh, nets))
    stage(reh, "render", "xfer render --set ..., then --check", lambda: render_nets(reh))
    stage(reh, "run", f"xfer run --backend {reh.backend}", lambda: train_nets(reh))
    outputs = {}
    stage(reh, "report", "xfer status, summary, plot", lambda: outputs.update(report_stages(reh)))
    stage(reh, "checks", "frozen layers, means, lists, nets", lambda: run_checks(reh, nets, outputs))
    seconds = time.monotonic() - started
    write_record(reh, seconds)
    say("\n" + table(reh))
    failed = [name for name, ok, _ in reh.results if not ok]
    say(f"\nxfer rehearse: {'FAILED: ' + ', '.join(failed) if failed else 'every check passed'} "
        f"in {seconds:.0f} s; record in {reh.out / 'rehearse.json'}")
    return 1 if failed else 0


def run_checks(reh, nets, outputs) -> str:
    reh.results += checks.all_checks(nets, reh.results_dir, reh.data, reh.out / "data-again", reh.schedule, outputs)
    passed = sum(ok for _, ok, _ in reh.results)
    return f"{passed} of {len(reh.results)} passed"
