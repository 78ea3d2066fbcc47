"""The parse cache: one entry per net folder under `xfer.paths.cache_dir()/caffelog`, outside the repository.

An entry is valid only for the exact list of log files it was made from, each with its size and mtime (and this
parser's version): a log that grows, is replaced or is added makes the entry stale, and a stale entry is never used.
Each entry has two files: `<id>.pkl`, the NetLog with its test series and a digest of the long train series (length,
last iteration, 10 lowest / highest values: all `xfer summary` needs), and `<id>.arrays`, the full train arrays, read
only when someone asks for them (a plot of the training curve). Writes are atomic; a damaged or unreadable entry is
treated as missing, and a cache dir that cannot be written costs speed, never results.
"""
import hashlib
import os
import pickle
import secrets
from pathlib import Path

import numpy as np

from . import paths

PARSER_VERSION = 5  # bump when the parsed content changes: older entries are then ignored
FIELDS = ("iter", "value", "time", "run")
FIELD_TYPES = (np.int64, np.float64, np.float64, np.int64)


def entry_base(folder) -> Path:
    digest = hashlib.sha1(os.path.abspath(folder).encode()).hexdigest()[:20]
    return paths.cache_dir() / "caffelog" / digest


def key_of(logs) -> tuple:
    """What an entry must have been made from: this parser and each log's name, size and mtime."""
    stats = []
    for p in logs:
        st = os.stat(p)
        stats.append((Path(p).name, st.st_size, st.st_mtime_ns))
    return (PARSER_VERSION, tuple(stats))


class StoredArrays:
    """A picklable reference to the train arrays of one entry; loading checks they belong to the same write."""

    def __init__(self, path, prefix, token, folder):
        self.path, self.prefix, self.token, self.folder = str(path), prefix, token, str(folder)

    def __call__(self):
        try:
            with open(self.path, "rb") as handle:
                stored = pickle.load(handle)
            if stored["token"] == self.token:
                return tuple(np.asarray(a, dt) for a, dt in zip(stored[self.prefix], FIELD_TYPES))
        except (OSError, KeyError, ValueError, EOFError, pickle.UnpicklingError):
            pass
        # The arrays were removed or rewritten since the entry was read: parse the logs again.
        from .caffelog import parse_net_dir
        series = getattr(parse_net_dir(self.folder, cache=False), self.prefix)
        return tuple(getattr(series, f) for f in FIELDS)


def compact(series):
    """The four arrays of a series, iterations and runs as int32 where they fit (a quarter less to write)."""
    arrays = [series.iter, series.value, series.time, series.run]
    for i in (0, 3):
        if len(arrays[i]) and np.abs(arrays[i]).max() < 2 ** 31:
            arrays[i] = arrays[i].astype(np.int32)
    return tuple(arrays)


def load(folder, key):
    """The cached NetLog of `folder` if the entry was made from exactly `key`, else None."""
    base = entry_base(folder)
    try:
        with open(base.with_suffix(".pkl"), "rb") as handle:
            stored = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError, ImportError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != key or stored.get("folder") != str(folder):
        return None
    return stored["netlog"]


def store(folder, key, netlog):
    """Write the entry; returns the NetLog whose train series now read their arrays from it (or `netlog`)."""
    from .caffelog import Series  # the cache module is imported by caffelog, not the other way round at load time
    base = entry_base(folder)
    token = secrets.token_hex(8)
    arrays = {p: compact(getattr(netlog, p)) for p in ("loss", "lr")}
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        paths.write_bytes_atomic(base.with_suffix(".arrays"), pickle.dumps(dict(arrays, token=token), protocol=5))
        light = netlog.with_series(**{p: Series.stored(StoredArrays(base.with_suffix(".arrays"), p, token, folder),
                                                      getattr(netlog, p).digest) for p in ("loss", "lr")})
        paths.write_bytes_atomic(base.with_suffix(".pkl"),
                                 pickle.dumps({"key": key, "folder": str(folder), "netlog": light}, protocol=5))
    except OSError:
        return netlog
    return light
