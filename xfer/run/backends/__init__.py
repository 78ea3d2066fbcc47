"""Where `xfer run` trains the graph, by name: `local` (slots/GPUs of this machine) and `slurm` (one batch job per
net). The interface is in base.py; a new backend is a Backend subclass passed to `register` (its module may be
anywhere: the CLI, status and the runner ask this registry, never a backend by name)."""
from ...errors import XferError
from .base import Backend, RunOptions  # noqa: F401  (re-exported: the runner and the CLI build runs with them)
from .local import LocalBackend
from .slurm import SlurmBackend

BACKENDS = {}


def register(backend) -> type:
    """Add a Backend subclass under its name (a class decorator too); its flags join `xfer run`'s."""
    if not backend.name or backend.name in BACKENDS:
        raise XferError(f"a backend needs a name of its own (got {backend.name!r})")
    BACKENDS[backend.name] = backend
    return backend


def unregister(name) -> None:
    BACKENDS.pop(name, None)


register(LocalBackend)
register(SlurmBackend)


def names() -> tuple:
    return tuple(BACKENDS)


def get(name) -> type:
    if name not in BACKENDS:
        raise XferError(f"unknown backend {name!r}", fix=f"use one of: {', '.join(BACKENDS)}")
    return BACKENDS[name]


def add_arguments(parser) -> None:
    """Every backend's own flags, each backend's in its own group of the help."""
    for backend in BACKENDS.values():
        backend.add_arguments(parser)


def options(name, args, **common) -> RunOptions:
    """The run's options for backend `name`: the common ones and the values of that backend's own flags."""
    return RunOptions(**common, own=get(name).options_from(args))


def job_heading() -> str:
    """The status table's job column: the headings of the backends that have jobs ("slurm job")."""
    return " / ".join(b.column for b in BACKENDS.values() if b.column) or "job"


def queues() -> dict:
    """{backend name: a snapshot of its queue}: taken once for a whole status table."""
    return {name: backend(RunOptions()).queue() for name, backend in BACKENDS.items()}


def job_of(folder, snapshot=None) -> tuple:
    """(job text, state while queued) of a net folder from the first backend that knows a job there; (None, None)."""
    snapshot = snapshot or {}
    for name, backend in BACKENDS.items():
        found = backend(RunOptions()).job_state(folder, snapshot.get(name))
        if found:
            return found
    return None, None
