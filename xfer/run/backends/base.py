"""What every backend of `xfer run` offers, and what they share.

A backend is registered by name (xfer/run/backends/__init__.py: `register`) and brings its own options: `flags`,
the arguments it adds to `xfer run` (their values reach it as `self.own`), `column`, the heading of its job in the
status table (None: it has no jobs), and `job_state`. It is made with the run's options:
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
    """What every backend takes; `own` holds the values of the chosen backend's own flags, by their dest."""
    gpus: "str | None" = None        # "0,1": one net per GPU (a scheduler: each job asks for a GPU)
    cpu: bool = False                # train on the CPU even when Caffe has CUDA
    dry_run: bool = False            # print the plan (and the job scripts) only
    retries: int = DEFAULT_RETRIES   # per net: tries again after a failure that may pass (xfer/run/failures.py)
    own: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)  # local trainers get these too (the studies' pinned BLAS); sbatch passes
    # the submitting environment on by itself


@dataclass(frozen=True)
class Flag:
    """One argument a backend adds to `xfer run`: argparse's names and keywords, as add_argument takes them."""
    names: tuple
    kwargs: dict

    @property
    def dest(self) -> str:
        return self.kwargs.get("dest") or self.names[0].lstrip("-").replace("-", "_")


def flag(*names, **kwargs) -> Flag:
    return Flag(names, kwargs)


class Backend(ABC):
    """The interface (see the module's docstring); a backend without a queue keeps queue/job_state's defaults."""
    name = ""
    flags: tuple = ()    # its own arguments of `xfer run` (Flag), shown in their own group of the help
    column = None        # the status table's heading of its jobs ("slurm job"); None: it has none

    def __init__(self, options: RunOptions):
        self.options = options
        self.own = {f.dest: f.kwargs.get("default") for f in self.flags} | options.own

    @classmethod
    def add_arguments(cls, parser) -> None:
        """Its flags, in a group of their own named after it."""
        if cls.flags:
            group = parser.add_argument_group(f"{cls.name} scheduler")
            for one in cls.flags:
                group.add_argument(*one.names, **one.kwargs)

    @classmethod
    def options_from(cls, args) -> dict:
        """The values of its flags from parsed arguments."""
        return {f.dest: getattr(args, f.dest) for f in cls.flags}

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
