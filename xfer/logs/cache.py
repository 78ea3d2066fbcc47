"""The parse cache: one entry per net folder under `xfer.paths.cache_dir()/caffelog`, outside the repository.

An entry is valid only for the exact list of log files it was made from, each with its size and mtime (and this
parser's version): a log that grows, is replaced or is added makes the entry stale, and a stale entry is never used.
An entry is one file `<id>.pkl` holding two pickles: first the NetLog with its test series and a digest of the long
train series (length, last iteration, 10 lowest / highest values: all `xfer summary` needs), then the train arrays,
read only when someone asks for them (a plot of the training curve). Writes are atomic; a damaged or unreadable entry is
treated as missing, and a cache dir that cannot be written costs speed, never results.
"""
import hashlib
import os
import pickle
import secrets
from pathlib import Path

import numpy as np

from .. import paths
from .series import FIELD_TYPES, Series

PARSER_VERSION = 8  # bump when the parsed content changes: older entries are then ignored


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

    def __init__(self, path, prefix, token, reparse):
        self.path, self.prefix, self.token, self.reparse = str(path), prefix, token, reparse

    def __call__(self):
        try:
            with open(self.path, "rb") as handle:
                pickle.load(handle)  # the entry's first half: the NetLog
                stored = pickle.load(handle)
            if stored["token"] == self.token:
                loss = decode_series(stored["loss"])
                return loss if self.prefix == "loss" else decode_series(stored["lr"], like=loss)
        except (OSError, KeyError, ValueError, EOFError, pickle.UnpicklingError):
            pass
        # The arrays were removed or rewritten since the entry was read: parse the logs again.
        return self.reparse()


def encode(array, like=None):
    if array is None:  # not parsed (a summary-detail entry's times)
        return ("none",)
    """A small stand-in for an array: ("same",) when equal to `like`, ("step", first, step, n) for an arithmetic
    progression (iterations), ("runs", starts, values, n) when it changes rarely (learning rate, run), else the
    array itself (integers as int32 where they fit). Logs are long and regular, so the cache stays small."""
    n = len(array)
    if like is not None and len(like) == n and np.array_equal(array, like):
        return ("same",)
    if n >= 2 and array.dtype.kind == "i":
        steps = np.diff(array)
        if (steps == steps[0]).all():
            return ("step", int(array[0]), int(steps[0]), n)
    change = np.flatnonzero(np.concatenate(([True], array[1:] != array[:-1]))) if n else np.zeros(0, np.int64)
    if len(change) * 8 < n:
        return ("runs", change.astype(np.int64), array[change], n)
    if array.dtype.kind == "i" and n and np.abs(array).max() < 2 ** 31:
        return ("raw", array.astype(np.int32))
    return ("raw", array)


def decode(code, dtype, like=None):
    tag = code[0]
    if tag == "none":
        return None
    if tag == "same":
        return np.asarray(like, dtype)
    if tag == "step":
        _, first, step, n = code
        return first + step * np.arange(n, dtype=dtype)
    if tag == "runs":
        _, starts, values, n = code
        counts = np.diff(np.concatenate((starts, [n])))
        return np.repeat(values, counts).astype(dtype)
    return np.asarray(code[1], dtype)


def encode_series(series, like=None):
    """The codes of a series' arrays, without loading or upgrading anything it does not hold yet."""
    like_arrays = (None,) * 4 if like is None else like.held_arrays()
    return tuple(encode(a, like_arrays[i]) for i, a in enumerate(series.held_arrays()))


def decode_series(codes, like=None):
    return tuple(decode(c, dt, None if like is None else like[i]) for i, (c, dt) in enumerate(zip(codes, FIELD_TYPES)))



def write_atomic(path, *parts):
    """Write to a temp file named after this process, then rename over `path` (readers see old or new, whole).
    Cheaper than tempfile.mkstemp, which matters when a tree's 150 entries are written in one go."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as handle:
            for part in parts:
                handle.write(part)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def load(folder, key, detail="full"):
    """The cached NetLog of `folder` if the entry was made from exactly `key` (and in full when `detail` is full;
    a full entry serves a summary-detail request too), else None."""
    base = entry_base(folder)
    try:
        with open(base.with_suffix(".pkl"), "rb") as handle:
            stored = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError, ImportError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != key or stored.get("folder") != str(folder):
        return None
    if detail == "full" and stored["netlog"].detail != "full":
        return None
    return stored["netlog"]


def store(folder, key, netlog, reparse):
    """Write the entry; returns the NetLog whose train series now read their arrays from it (or `netlog`).
    `reparse(prefix)` gives the picklable callable that parses the logs again should the stored arrays be gone."""
    base = entry_base(folder)
    token = secrets.token_hex(8)
    full = netlog.detail == "full"
    arrays = {"loss": encode_series(netlog.loss), "lr": encode_series(netlog.lr, like=netlog.loss) if full else None}
    path = base.with_suffix(".pkl")
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        light = netlog.with_series(**{p: Series.stored(StoredArrays(path, p, token, reparse(p)),
                                                      getattr(netlog, p).digest, getattr(netlog, p).upgrade)
                                      for p in (("loss", "lr") if full else ("loss",))})
        write_atomic(path, pickle.dumps({"key": key, "folder": str(folder), "netlog": light}, protocol=5),
                     pickle.dumps(dict(arrays, token=token), protocol=5))
    except OSError:
        return netlog
    return light
