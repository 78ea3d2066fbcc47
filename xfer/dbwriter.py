"""The two database writers: Caffe's own tools, and the parallel writer that yields the same records faster.

`parallel`: the list is cut into chunks; up to `jobs` real `convert_imageset` processes convert chunks into small
LMDBs in a temporary folder (RAM-backed /dev/shm when it has room) while this process merges finished chunks, in
order, into the one database: each key's line number is shifted by the chunk's offset, the serialized Datum is copied
as is. So keys and values are those of one convert_imageset run on the whole list. Merging overlaps conversion;
the chunks shrink towards the end of the list so that little merging is left once the last conversion ends.
The mean is summed during the merge with compute_image_mean's float arithmetic in key order (bit-identical).
"""
import os
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lmdb
import numpy as np

from .caffeenv import tool
from .dbformat import COMMIT_EVERY, MeanAccumulator, iterate, key_line_id, open_writer, renumber_key
from .errors import XferError

# glog to stderr (else every run leaves log files in /tmp); OpenBLAS threads are useless here and cost start-up time.
TOOL_ENV = {"GLOG_logtostderr": "1", "GLOG_minloglevel": "1", "OPENBLAS_NUM_THREADS": "1"}
MAX_CHUNK = 10000     # images per chunk at most (bounds the temporary space: ~2 GB per chunk at 256x256x3)
MIN_CHUNK = 16


class Options:
    """How images become records: convert_imageset's flags."""

    def __init__(self, resize=256, gray=False, encode=None):
        self.resize, self.gray, self.encode = int(resize), bool(gray), encode

    def flags(self, backend="lmdb") -> list:
        flags = [f"--backend={backend}"]
        if self.resize > 0:
            flags += [f"--resize_height={self.resize}", f"--resize_width={self.resize}"]
        if self.gray:
            flags.append("--gray")
        if self.encode:
            flags += ["--encoded", f"--encode_type={self.encode}"]
        return flags


class Result:
    """What a writer produced: which list lines made it into the database, and the mean (or None)."""

    def __init__(self, written, mean_blob=None):
        self.written, self.mean_blob = written, mean_blob

    @property
    def count(self) -> int:
        return int(self.written.sum())

    def failed_lines(self) -> list:
        return [int(i) for i in np.flatnonzero(~self.written)]


class ToolRunner:
    """Runs Caffe tools as subprocesses (argument lists), and can kill every one still running."""

    def __init__(self):
        self.lock, self.running = threading.Lock(), set()

    def run(self, args, log_path) -> None:
        env = dict(os.environ, **TOOL_ENV)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
            with self.lock:
                self.running.add(proc)
            try:
                code = proc.wait()
            finally:
                with self.lock:
                    self.running.discard(proc)
        if code != 0:
            tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-5:]
            raise XferError(f"{Path(args[0]).name} failed (exit {code}):\n    " + "\n    ".join(tail),
                            path=log_path, fix="read the tool's log above; a full disk or a bad list are common causes")

    def kill_all(self) -> None:
        with self.lock:
            for proc in self.running:
                proc.kill()


def write_list_file(path, entries) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(f"{image} {label}\n" for image, label in entries)


def root_arg(root) -> str:
    """convert_imageset concatenates root + path, so the root needs its trailing slash."""
    return os.path.join(str(root), "")


def write_caffe(entries, root, out, backend, options, tmp_dir, mean=True, progress=None) -> Result:
    """One `convert_imageset` on the whole list, then `compute_image_mean` on its output."""
    runner, tmp_dir = ToolRunner(), Path(tmp_dir)
    list_path = tmp_dir / "list.txt"
    write_list_file(list_path, entries)
    runner.run([tool("convert_imageset"), *options.flags(backend), root_arg(root), str(list_path), str(out)],
               tmp_dir / "convert_imageset.log")
    written = np.zeros(len(entries), dtype=bool)
    for key in iterate(backend, out, values=False):
        written[key_line_id(bytes(key))] = True
    if progress is not None:
        progress.update(len(entries))
    blob = None
    if mean and written.any():
        mean_path = tmp_dir / "mean.binaryproto"
        runner.run([tool("compute_image_mean"), f"--backend={backend}", str(out), str(mean_path)],
                   tmp_dir / "compute_image_mean.log")
        from .caffeenv import caffe_pb2
        blob = caffe_pb2().BlobProto()
        blob.ParseFromString(mean_path.read_bytes())
    return Result(written, blob)


def plan_chunks(n, jobs, cap=MAX_CHUNK, min_chunk=MIN_CHUNK) -> list:
    """(start, stop) of each chunk: equal chunks of at most `cap`, then 3*jobs chunks of decreasing size."""
    k = 3 * jobs
    tail = min(n, cap * k // 2)
    head = n - tail
    bounds, start = [], 0
    if head:
        pieces = -(-head // cap)
        for i in range(pieces):
            stop = head * (i + 1) // pieces
            bounds.append((start, stop))
            start = stop
    weights = np.arange(k, 0, -1, dtype=np.float64)
    cuts = np.rint(np.cumsum(weights) / weights.sum() * tail).astype(int)
    for cut in cuts:
        stop = head + int(cut)
        if stop - start >= min_chunk or (stop == n and stop > start):
            bounds.append((start, stop))
            start = stop
    if start < n:  # what the min_chunk rule left over joins the last chunk
        bounds[-1] = (bounds[-1][0], n)
    return bounds


def chunk_cap(record_disk, jobs, tmp_free) -> int:
    """Chunk size such that the chunks alive at once (jobs converting + 2 waiting) fit in the temporary space."""
    fit = int(tmp_free * 0.8) // max(1, record_disk * (jobs + 2))
    return max(MIN_CHUNK, min(MAX_CHUNK, fit))


def convert_chunk(runner, entries, root, options, folder) -> Path:
    folder.mkdir()
    write_list_file(folder / "list.txt", entries)
    db = folder / "db"
    runner.run([tool("convert_imageset"), *options.flags("lmdb"), root_arg(root), str(folder / "list.txt"), str(db)],
               folder / "convert_imageset.log")
    return db


def merge_chunk(db, offset, sink, written, accumulate) -> int:
    """Copy one converted chunk into the sink, keys renumbered; returns its record count."""
    env = lmdb.open(str(db), readonly=True, lock=False, subdir=True)
    count = 0
    try:
        with env.begin(buffers=True) as txn:
            batch = []
            for key, value in txn.cursor():
                key = renumber_key(bytes(key), offset)
                written[key_line_id(key)] = True
                if accumulate is not None:
                    accumulate.add(value)
                batch.append((key, value))
                if len(batch) == COMMIT_EVERY:
                    sink.put_sorted(batch)
                    count, batch = count + len(batch), []
            if batch:
                sink.put_sorted(batch)
                count += len(batch)
    finally:
        env.close()
    return count


def write_parallel(entries, root, sink, options, jobs, tmp_dir, mean=True, progress=None, cap=MAX_CHUNK,
                   min_chunk=MIN_CHUNK) -> Result:
    """Convert `entries` (already in database order) with `jobs` convert_imageset processes; merge into `sink`."""
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    chunks = plan_chunks(len(entries), jobs, cap, min_chunk)
    written = np.zeros(len(entries), dtype=bool)
    accumulate = MeanAccumulator() if mean else None
    runner, work = ToolRunner(), Path(tempfile.mkdtemp(prefix="xfer-chunks-", dir=tmp_dir))
    pool = ThreadPoolExecutor(max_workers=jobs)
    pending, submitted = deque(), 0
    try:
        for start, stop in chunks:
            while submitted < len(chunks) and len(pending) < jobs + 2:  # bounded look-ahead: bounded temp space
                s, e = chunks[submitted]
                pending.append(pool.submit(convert_chunk, runner, entries[s:e], root, options,
                                           work / f"chunk{submitted:06d}"))
                submitted += 1
            db = pending.popleft().result()
            merge_chunk(db, start, sink, written, accumulate)
            shutil.rmtree(db.parent)
            if progress is not None:
                progress.update(stop - start)
    except BaseException:
        runner.kill_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(work, ignore_errors=True)
    blob = accumulate.blob() if accumulate is not None and accumulate.count else None
    return Result(written, blob)


def write_parallel_db(entries, root, out, backend, options, jobs, tmp_dir, map_size, mean=True, progress=None,
                      cap=MAX_CHUNK, min_chunk=MIN_CHUNK) -> Result:
    sink = open_writer(backend, out, map_size)
    try:
        return write_parallel(entries, root, sink, options, jobs, tmp_dir, mean, progress, cap, min_chunk)
    finally:
        sink.close()
