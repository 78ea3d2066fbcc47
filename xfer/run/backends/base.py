"""What every backend of `xfer run` offers, and what they share.

A backend is registered by name (xfer/run/backends/__init__.py) and is made with the run's options:
  submit(todo, done, results)    start training the nets of `todo` (bases first); returns its handle on the jobs
  wait(jobs, todo, results)      wait as the options ask; returns the run's exit code
  queue()                        a snapshot of the backend's queue ({} when it has none), taken once per table
  job_state(folder, queue)       (job text, state) of the net in `folder` from that snapshot, or None
"""
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ...nets import layout, registry
from ...progress import say
from ..failures import DEFAULT_RETRIES
from ..netdir import net_dir


def train_command(net, results, retries, device=None, extra=()) -> list:
    """The one `xfer train` command line every backend runs for a net: this kit's Python, the net's suite and
    results tree, quiet, its retries for failures that may pass, any backend extras, and the device (a GPU number,
    None for the CPU)."""
    cmd = [sys.executable, "-m", "xfer.cli", "train", net.name, "--suite", net.suite, "--results", str(results),
           "--quiet", "--retries", str(retries), *extra]
    return cmd + (["--cpu"] if device is None else ["--gpu", str(device)])


@dataclass
class RunOptions:
    gpus: "str | None" = None        # "0,1": one net per GPU (slurm: each job asks for a GPU)
    cpu: bool = False                # train on the CPU even when Caffe has CUDA
    slots: int = 1                   # nets trained at once on the CPU (local)
    dry_run: bool = False            # print the plan (and the job scripts) only
    wait: bool = False               # slurm: wait until the submitted jobs leave the queue
    partition: "str | None" = None   # slurm
    time: "str | None" = None        # slurm time limit per job
    signal_lead: "int | None" = None  # slurm: seconds before the time limit to stop, snapshot and requeue (0: never)
    cpus_per_task: "int | None" = None  # slurm
    sbatch_args: list = field(default_factory=list)  # extra sbatch arguments
    retries: int = DEFAULT_RETRIES   # per net: tries again after a failure that may pass (xfer/run/failures.py)


class Backend(ABC):
    """The interface (see the module's docstring); a backend without a queue keeps queue/job_state's defaults."""
    name = ""

    def __init__(self, options: RunOptions):
        self.options = options

    @abstractmethod
    def submit(self, todo, done, results):
        """Start training the nets of `todo` (bases first); returns the handle `wait` takes."""

    @abstractmethod
    def wait(self, jobs, todo, results) -> int:
        """Wait as the options ask; returns the run's exit code."""

    def queue(self) -> dict:
        return {}

    def job_state(self, folder, queue):
        return None


def say_plan(todo, done, results) -> None:
    """One line per net: skipped (finished), or trained after its base (and whether it is rendered)."""
    for net in done:
        say(f"skip   {net.name} (finished)")
    for net in todo:
        deps = registry.dependencies(net)
        rendered = (net_dir(results, net.name) / layout.SOLVER).is_file()
        say(f"train  {net.name}" + (f" after {', '.join(deps)}" if deps else "")
            + ("" if rendered else " (NOT RENDERED: run `xfer render` first)"))
