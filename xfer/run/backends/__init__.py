"""Where `xfer run` trains the graph, by name: `local` (slots/GPUs of this machine) and `slurm` (one batch job per
net). The interface is in base.py; a new backend is a Backend subclass added to BACKENDS."""
from ...errors import XferError
from .base import Backend, RunOptions  # noqa: F401  (re-exported: the runner and the CLI build runs with them)
from .local import LocalBackend
from .slurm import SlurmBackend

BACKENDS = {backend.name: backend for backend in (LocalBackend, SlurmBackend)}


def names() -> tuple:
    return tuple(BACKENDS)


def get(name) -> type:
    if name not in BACKENDS:
        raise XferError(f"unknown backend {name!r}", fix=f"use one of: {', '.join(BACKENDS)}")
    return BACKENDS[name]


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
