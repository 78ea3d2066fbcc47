"""Caffe training logs -> per-net arrays: train loss and lr by iteration, every test output, wall-clock time.

Reads both the original repository's layout (`results/<net>/*.o<job>.gz`, 2014 logs: `I0418 20:41:08.074206 8087
solver.cpp:123] Test score #0: 0.597`) and the kit's own (`results/<net>/<yymmdd_hhmmss>_<net>.log`, Caffe 1.0 with
glog 0.6: `I20261125 19:16:03.289494 ... Test net output #0: accuracy = 0.108`), plain or gzip, several files per
net, and any other Caffe log of the folder whatever its name (`log_file` of a by-hand `caffe.bin train`,
`slurm-123.out`, ...: see discover.py). A restarted run repeats iterations: for an iteration seen twice the
record with the latest time stamp wins (2014 stamps have no year: see lines.resolve_times). Truncated or garbled
lines are counted per file and reported, never fatal.

    log = parse_net_dir("results/transfer0A0B_1_3")
    log.tests["accuracy"].value, log.loss.iter, log.seconds_per_iter()
    logs = parse_tree("results")                      # {net name: NetLog}, parsed in parallel, cached
    logs = parse_tree("results", detail="summary")    # what `xfer summary` needs; the rest parsed on first use

Parsed nets are cached under `xfer.paths.cache_dir()/caffelog`, keyed by each log file's name, size and mtime:
a log that grows or is replaced is parsed again; the cache is never consulted for a file it does not describe.
"""
import concurrent.futures
import ctypes
import dataclasses
import fnmatch
import multiprocessing
import os
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

try:  # ISA-L's inflate reads the same gzip about twice as fast as zlib; inflating is a fifth of the cold cost
    from isal import isal_zlib as inflate
except ImportError:  # pragma: no cover - the kit pins isal; zlib gives the same bytes, slower
    inflate = zlib

from . import cache as parse_cache
from .discover import find_logs
from .lines import year_hint_from
from .scan import join_logs, scan_buffer
from .series import FIELD_TYPES, Series, make_digest

PARALLEL_BYTES = 4 << 20  # below this much compressed input a process pool costs more than it saves

NO_LOGS = "no training logs in the folder"  # the problem of a net not trained yet (summary groups them)


class FullDetail:
    """Fetches a quantity of a net from a full parse of its logs (made once, then cached), for series that a
    summary-detail parse left without times or arrays."""

    def __init__(self, folder, prefix, cache=True):
        self.folder, self.prefix, self.cache = str(folder), prefix, cache

    def __call__(self):
        series = getattr(parse_net_dir(self.folder, cache=self.cache, detail="full"), self.prefix)
        return tuple(getattr(series, f) for f in ("iter", "value", "time", "run"))


@dataclass
class LogFile:
    path: str
    size: int
    mtime_ns: int
    lines: int = 0
    bad_lines: int = 0
    bad_examples: list = field(default_factory=list)  # (line number, text) of the first few garbled lines
    truncated: bool = False  # a gzip stream that ends early (the readable part is used)


@dataclass
class NetLog:
    name: str
    folder: str
    files: list  # LogFile, in name order
    loss: Series  # training loss at each displayed iteration
    lr: Series  # learning rate at each displayed iteration
    tests: dict  # output name ("accuracy", "loss", ...) -> Series, in the net's output order
    detail: str = "full"  # "summary": loss times and the learning rate are parsed when first used

    @property
    def lines(self) -> int:
        return sum(f.lines for f in self.files)

    @property
    def bad_lines(self) -> int:
        return sum(f.bad_lines for f in self.files)

    @property
    def last_iter(self) -> int:
        ends = [s.last_iter for s in (self.loss, self.lr, *self.tests.values()) if s.known and len(s)]
        return max(ends, default=0)

    def with_series(self, **series) -> "NetLog":
        return dataclasses.replace(self, **series)

    def seconds_per_iter(self):
        """(iteration, wall-clock seconds per iteration over the interval ending there), within one run only."""
        s = self.loss
        same_run = (s.run[1:] == s.run[:-1]) & (np.diff(s.iter) > 0) & (np.diff(s.time) >= 0)
        rate = np.diff(s.time)[same_run] / np.diff(s.iter)[same_run]
        return s.iter[1:][same_run], rate

    def problems(self) -> list:
        """Plain-words reasons this net's numbers are missing or doubtful (empty when all is well)."""
        out = []
        if not self.files:
            out.append(NO_LOGS)
        elif not len(self.loss) and not self.tests:
            out.append("logs hold no training iterations (the run crashed or has not started)")
        elif not self.tests:
            out.append(f"no test yet (trained to iteration {self.last_iter})")
        for f in self.files:
            if f.bad_lines:
                first = f"; first at line {f.bad_examples[0][0]}: {f.bad_examples[0][1][:80]!r}" \
                    if f.bad_examples else ""
                out.append(f"{Path(f.path).name}: {f.bad_lines} garbled line(s) skipped{first}")
            if f.truncated:
                out.append(f"{Path(f.path).name}: gzip stream ends early (the readable part is used)")
        return out


def read_log(path):
    """The text of a log, gunzipped when it is gzip (several members allowed); and whether the stream ends early."""
    raw = Path(path).read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw, False
    try:  # the usual case, one whole gzip member: its trailer gives the size, so the output is never regrown
        text = inflate.decompress(raw, 31, max(int.from_bytes(raw[-4:], "little"), 64))
        if len(text) % (1 << 32) == int.from_bytes(raw[-4:], "little"):
            return text, False
    except (zlib.error, inflate.error):
        pass
    parts, truncated = [], False
    while raw:
        stream = zlib.decompressobj(31)
        try:
            parts.append(stream.decompress(raw))
        except zlib.error:
            truncated = True
            break
        if not stream.eof:
            truncated = True
            break
        raw = stream.unused_data if stream.unused_data[:2] == b"\x1f\x8b" else b""
    return b"".join(parts), truncated


def parse_logs(paths, detail="full") -> tuple:
    """([LogFile], scan) of a net's log files, read and scanned together (scan.scan_buffer)."""
    texts, infos, hints = [], [], []
    for path in paths:
        stat = os.stat(path)
        text, truncated = read_log(path)
        texts.append(text)
        hints.append(year_hint_from(Path(path).name, stat.st_mtime))
        infos.append(LogFile(str(path), stat.st_size, stat.st_mtime_ns, truncated=truncated))
    buf, offsets, cut = join_logs(texts)
    scanned = scan_buffer(buf, hints, offsets, cut, full=detail == "full")
    for info, counts in zip(infos, scanned["files"]):
        info.lines, info.bad_lines, info.bad_examples = counts["lines"], counts["bad"], counts["bad_examples"]
    return infos, scanned


def latest_per_iteration(iters, values, times, runs, extremes=True) -> Series:
    """Sort by iteration; where an iteration repeats (a restart), keep the record with the latest time."""
    if len(iters) < 2 or bool((iters[1:] > iters[:-1]).all()):  # the usual case: one run, nothing repeated
        return Series(iters, values, times, runs, extremes)
    order = np.lexsort((np.nan_to_num(times, nan=-np.inf), iters))  # an unread stamp never wins
    iters = iters[order]
    last = np.ones(len(iters), bool)
    last[:-1] = iters[1:] != iters[:-1]
    pick = order[last]
    return Series(iters[last], values[pick], times[pick], runs[pick], extremes)


def merge(name, folder, infos, scanned, detail="full") -> NetLog:
    """One NetLog from the scan of a net's logs: each quantity's records, the latest per iteration."""
    def combine(key):
        if key not in scanned["series"]:
            return Series(*(np.zeros(0, dt) for dt in FIELD_TYPES))
        return latest_per_iteration(*scanned["series"][key], extremes=key != "lr")

    tests = {n: combine(("test", n)) for n in scanned["test_names"]}
    if detail == "full":
        return NetLog(name, str(folder), infos, combine("loss"), combine("lr"), tests)
    loss = combine("loss")  # its times were read only where an iteration repeats, to pick the latest record
    loss = Series(loss.iter, loss.value, None, loss.run, upgrade=FullDetail(folder, "loss"))
    lr = Series.stored(None, make_digest(None, None), upgrade=FullDetail(folder, "lr"))
    return NetLog(name, str(folder), infos, loss, lr, tests, detail="summary")


def parse_net_dir(path, cache=True, detail="full") -> NetLog:
    """Every log of one net folder, merged (restarts: latest record wins). Cached by the logs' size and mtime.

    detail="summary" skips what `xfer summary` does not use (the loss lines' time stamps, the learning rate);
    they are parsed when first asked for."""
    folder = Path(path)
    logs = find_logs(folder)
    key = parse_cache.key_of(logs)
    if cache:
        hit = parse_cache.load(folder, key, detail)
        if hit is not None:
            return hit
    return parse_cold(folder, logs, key, cache, detail)


def parse_cold(folder, logs, key, cache=True, detail="full") -> NetLog:
    """Parse a net's logs (the cache missed) and store the result when `cache`."""
    netlog = merge(folder.name, folder, *parse_logs(logs, detail), detail=detail)
    if cache and logs:
        netlog = parse_cache.store(folder, key, netlog, lambda prefix: FullDetail(folder, prefix, cache=False))
    return netlog


def keep_freed_memory():
    """In a parse worker: let glibc's malloc keep freed memory for reuse instead of handing it back to the OS.

    Each net allocates and frees tens of MB (its text, numpy temporaries); by default glibc maps the big blocks
    fresh and returns them on free, so every net pays its page faults again: a fifth of the cold parse's CPU went
    to the kernel. A worker's peak stays that of one net, and the memory goes back when the pool ends."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: blocks below 32 MB (glibc's usual cap) come from the heap
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD: the freed top of the heap is not trimmed below 1 GB
    except (OSError, AttributeError):  # not glibc (macOS): the default behaviour, only slower
        pass


def net_dirs(results_dir, nets=None) -> list:
    """The net folders of a results tree (sorted), optionally only those matching names / fnmatch patterns."""
    root = Path(results_dir)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if root.is_dir() else []
    if nets:
        folders = [p for p in folders if any(fnmatch.fnmatchcase(p.name, pat) for pat in nets)]
    return folders


def parse_tree(results_dir, nets=None, cache=True, workers=None, detail="full") -> dict:
    """{net name: NetLog} for every net folder of a results tree; cold nets are parsed on all cores."""
    folders = net_dirs(results_dir, nets)
    out, todo = {}, []
    for folder in folders:
        logs = find_logs(folder)
        key = parse_cache.key_of(logs)
        hit = parse_cache.load(folder, key, detail) if cache else None
        if hit is not None:
            out[folder.name] = hit
        else:
            todo.append((sum(size for _, size, _ in key[1]), folder, logs, key))
    todo.sort(key=lambda t: -t[0])  # largest first: the pool finishes evenly
    workers = workers or len(os.sched_getaffinity(0))
    if workers > 1 and len(todo) > 1 and sum(t[0] for t in todo) >= PARALLEL_BYTES:
        # fork is the fast start, but forking a process with threads (a Jupyter kernel) can deadlock a child.
        methods = multiprocessing.get_all_start_methods()
        method = "fork" if "fork" in methods and threading.active_count() == 1 else \
            "forkserver" if "forkserver" in methods else None
        context = multiprocessing.get_context(method) if method else None
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(todo)), mp_context=context,
                                                    initializer=keep_freed_memory) as pool:
            for netlog in pool.map(parse_cold, *zip(*[t[1:] for t in todo]), [cache] * len(todo),
                                   [detail] * len(todo)):
                out[netlog.name] = netlog
    else:
        for _, folder, logs, key in todo:
            out[folder.name] = parse_cold(folder, logs, key, cache, detail)
    return {folder.name: out[folder.name] for folder in folders}
