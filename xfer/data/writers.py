"""The two database writers: Caffe's own tools, and the parallel writer that yields the same records faster.

`parallel`: `jobs` real `convert_imageset` processes run at once, process s converting lines s, s+jobs, s+2*jobs...
of a block of the list into its own small LMDB (in RAM-backed /dev/shm when it has room). While they run, this
process reads what they have committed (LMDB readers see each commit; convert_imageset commits every 1000 records)
and writes the records in list order into the one database: the key `%08d_path` gets the line's number in the whole
list, the serialized Datum is copied as is. So keys and values are those of one convert_imageset run on the whole
list, and the merge overlaps the conversion. Each process pays Caffe's start-up (~0.2 s) once per block, not per
image; blocks bound the temporary space (two blocks' shards exist at once at most).
The mean is summed during the merge with compute_image_mean's float arithmetic in key order (bit-identical).
"""
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import lmdb
import numpy as np

from ..caffeenv import caffe_pb2, tool
from .dbformat import (COMMIT_EVERY, MapGrown, MeanAccumulator, PageReleaser, iterate, key_line_id, make_key,
                       open_writer)
from ..errors import XferError

SHM = Path("/dev/shm")
# glog to stderr (else every run leaves log files in /tmp); OpenBLAS threads are useless here and cost start-up time.
TOOL_ENV = {"GLOG_logtostderr": "1", "GLOG_minloglevel": "1", "OPENBLAS_NUM_THREADS": "1"}
# The parallel writer's convert_imageset processes keep freed memory instead of returning it to the kernel after each
# ~200 kB image: fewer page faults (expensive in a VM), less CPU per image; the output is the same.
MALLOC_ENV = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824"}
# `convert_imageset --encoded --encode_type=jpg` re-encodes each resized image with cv::imencode's defaults, and
# OpenCV's default IMWRITE_JPEG_QUALITY is 95 (the tool has no flag for it): the quality `xfer db --encoded` records.
JPEG_QUALITY = 95


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
            raise tool_failure(args, code, log_path)

    def start(self, args, log_path):
        """Start a tool without waiting (its output goes to log_path); kill_all() stops it."""
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                    env=dict(os.environ, **TOOL_ENV, **MALLOC_ENV))
        with self.lock:
            self.running.add(proc)
        return proc

    def kill_all(self) -> None:
        with self.lock:
            for proc in self.running:
                if proc.poll() is None:
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
        blob = caffe_pb2().BlobProto()
        blob.ParseFromString(mean_path.read_bytes())
    return Result(written, blob)


def plan_blocks(n, block) -> list:
    """(start, stop) of each block of at most `block` lines."""
    block = max(1, int(block))
    return [(start, min(n, start + block)) for start in range(0, n, block)]


def temp_and_block(n, record_disk, jobs, fallback):
    """Where shard databases go and how many lines a block holds (two blocks' shards exist at once at most).

    RAM-backed /dev/shm when it has room, using at most a quarter of it; else the fallback folder (beside the
    database) with small blocks: jobs x 2000 lines, whose temporary disk temp_disk() reports.
    """
    if SHM.is_dir():
        free = min(shutil.disk_usage(SHM).free, available_memory())
        block = int(free * 0.125) // max(1, record_disk)
        if block >= min(n, jobs * COMMIT_EVERY):
            return SHM, max(1, min(n, block))
    Path(fallback).mkdir(parents=True, exist_ok=True)
    return Path(fallback), max(1, min(n, 2 * jobs * COMMIT_EVERY))


def temp_disk(tmp_dir, block, record_disk) -> int:
    """Disk the shard databases take at most, when they are on disk (0 in /dev/shm)."""
    return 0 if Path(tmp_dir) == SHM else 2 * block * record_disk


def available_memory() -> int:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


class Shard:
    """One convert_imageset process converting lines start+s, start+s+jobs, ... of a block into its own LMDB.

    Its records are read while it runs: LMDB lets a reader see every commit (convert_imageset commits every 1000).
    """

    def __init__(self, runner, entries, root, options, folder):
        folder.mkdir(parents=True)
        write_list_file(folder / "list.txt", entries)
        self.folder, self.db, self.log = folder, folder / "db", folder / "convert_imageset.log"
        self.env, self.txn, self.finished, self.pages = None, None, False, None
        self.proc = runner.start([tool("convert_imageset"), *options.flags("lmdb"), root_arg(root),
                                  str(folder / "list.txt"), str(self.db)], self.log)

    def refresh(self) -> None:
        """A new snapshot of what the process has committed; raises if the process failed."""
        code = self.proc.poll()
        if code is not None and code != 0:
            raise tool_failure(self.proc.args, code, self.log)
        if self.txn is not None:
            self.txn.abort()
            self.txn = None
        if self.env is None:
            try:  # a huge map: the writer's file may grow past any size read now
                self.env = lmdb.open(str(self.db), readonly=True, lock=True, map_size=1 << 40, subdir=True)
            except lmdb.Error:
                return  # not created yet
            self.pages = PageReleaser(self.db / "data.mdb", self.env.stat()["psize"])
        self.finished = code is not None
        self.txn = self.env.begin(buffers=True)

    def lookup(self, local: int, image: str):
        """('ok', buffer) | ('missing', None) | ('wait', None) for the shard's line `local`."""
        if self.txn is not None:
            value = self.txn.get(make_key(local, image))
            if value is not None:
                return "ok", value
            later = self.txn.cursor()
            if later.set_range(b"%08d_" % (local + 1)) or self.finished:
                return "missing", None  # a later line is committed (commits go in order), or the process is done
        return ("missing", None) if self.finished else ("wait", None)

    def close(self) -> None:
        if self.pages is not None:
            self.pages.close()
        if self.txn is not None:
            self.txn.abort()
        if self.env is not None:
            self.env.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def tool_failure(args, code, log) -> XferError:
    tail = Path(log).read_text(errors="replace").strip().splitlines()[-5:]
    return XferError(f"{Path(args[0]).name} failed (exit {code}):\n    " + "\n    ".join(tail), path=log,
                     fix="read the tool's log above; a full disk or a bad list are common causes")


def start_blocks(blocks, entries, root, options, jobs, work, runner, ready, alive, stop_event):
    """Producer: start each block's shards once the previous block's processes are done (and temp space allows)."""
    try:
        for b, (start, stop) in enumerate(blocks):
            alive.acquire()  # at most two blocks' shard databases exist at once
            if stop_event.is_set():
                return
            n_shards = min(jobs, stop - start)
            shards = [Shard(runner, entries[start + s:stop:n_shards], root, options, work / f"block{b:05d}_{s}")
                      for s in range(n_shards)]
            ready.put((start, stop, shards))
            if stop_event.is_set():
                runner.kill_all()
                return
            for shard in shards:
                shard.proc.wait()
    except BaseException as exc:  # handed to the merging thread, which raises it
        ready.put(exc)


def wait_for(shard, local, image):
    state, value = shard.lookup(local, image)
    while state == "wait":
        time.sleep(0.01)
        shard.refresh()
        state, value = shard.lookup(local, image)
    return value


def merge_block(entries, start, stop, shards, sink, written, accumulate, progress) -> None:
    """Lines start..stop-1 from the block's shards into the sink, in order, committing every COMMIT_EVERY."""
    i = checkpoint = start
    saved = accumulate.snapshot() if accumulate is not None else None
    while i < stop:
        local, s = divmod(i - start, len(shards))
        image = entries[i][0]
        value = wait_for(shards[s], local, image)  # a buffer into the shard's map: used right away, never kept
        try:
            if value is not None:
                sink.put(make_key(i, image), value)
                written[i] = True
                if accumulate is not None:
                    accumulate.add(value)
                shards[s].pages.spend(value)
            i += 1
            if i - checkpoint == COMMIT_EVERY or i == stop:
                commit(sink, shards, progress, i - checkpoint)
                checkpoint = i
                saved = accumulate.snapshot() if accumulate is not None else None
        except MapGrown:  # the output grew: redo the lines since the last commit (the shards still hold them)
            written[checkpoint:i] = False
            rewind(shards, accumulate, saved)
            i = checkpoint


def commit(sink, shards, progress, count) -> None:
    """Commit the sink; the records are in it now, so the shards' memory for them can serve again."""
    sink.commit()
    for shard in shards:
        if shard.pages is not None:
            shard.pages.release()
    if progress is not None:
        progress.update(count)


def rewind(shards, accumulate, saved) -> None:
    """Back to the last commit: the lines are read again, so their pages must stay, and the mean forgets them."""
    for shard in shards:
        if shard.pages is not None:
            shard.pages.forget()
    if accumulate is not None:
        accumulate.restore(saved)


def remove_tree(path) -> None:
    """Remove a temporary folder; once more after a moment if a dying process was still writing into it."""
    for _ in range(3):
        shutil.rmtree(path, ignore_errors=True)
        if not Path(path).exists():
            return
        time.sleep(0.2)


def write_parallel(entries, root, sink, options, jobs, tmp_dir, mean=True, progress=None, block=None) -> Result:
    """Convert `entries` (in database order) with `jobs` convert_imageset processes at a time; merge into `sink`.

    Lines are dealt round-robin to the processes of a block, so all of them advance together and the merge (in
    key order) follows them closely; `block` bounds the lines whose shard databases exist at once.
    """
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    blocks = plan_blocks(len(entries), block or len(entries))
    written = np.zeros(len(entries), dtype=bool)
    accumulate = MeanAccumulator() if mean else None
    runner, work = ToolRunner(), Path(tempfile.mkdtemp(prefix="xfer-shards-", dir=tmp_dir))
    ready, alive, stop_event = queue.Queue(), threading.Semaphore(2), threading.Event()
    producer = threading.Thread(target=start_blocks, daemon=True,
                                args=(blocks, entries, root, options, jobs, work, runner, ready, alive, stop_event))
    producer.start()
    try:
        for _ in blocks:
            item = ready.get()
            if isinstance(item, BaseException):
                raise item
            start, stop, shards = item
            for shard in shards:
                shard.refresh()
            merge_block(entries, start, stop, shards, sink, written, accumulate, progress)
            for shard in shards:
                shard.close()
            alive.release()
    except BaseException:
        stop_event.set()
        alive.release(len(blocks) + 2)  # the producer must not wait for a slot again
        runner.kill_all()
        producer.join(timeout=60)
        runner.kill_all()  # any shard it started meanwhile
        raise
    finally:
        producer.join(timeout=60)
        remove_tree(work)
    blob = accumulate.blob() if accumulate is not None and accumulate.count else None
    return Result(written, blob)


def write_parallel_db(entries, root, out, backend, options, jobs, tmp_dir, map_size, mean=True, progress=None,
                      block=None) -> Result:
    sink = open_writer(backend, out, map_size)
    try:
        return write_parallel(entries, root, sink, options, jobs, tmp_dir, mean, progress, block)
    finally:
        sink.close()
