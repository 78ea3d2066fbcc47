"""Which files of a net folder are Caffe training logs, whatever their names.

Logs by name, read unopened: the kit's `<yymmdd_hhmmss>_<net>.log` (xfer/run/train.py, one per start) and the
paper's `<yymmdd_hhmmss>_<net>.o<job>.gz` (its launch scripts). Their launchers write nothing but Caffe's output
there, a log Caffe has not written into yet still counts (the run started), and not opening them keeps a warm
`xfer summary` of the paper's 354 logs at its speed.

Logs by content, any other name: `log_file` from the original README's `./caffe.bin train ... > log_file 2>&1`,
`train.log`, `nohup.out`, `slurm-123.out`, an SGE `job.o12345` / `job.e12345`, gzipped or not. A file is a log when
its first 64 KB hold a glog line stamped by a Caffe source file (`I1203 09:00:00.123456 4242 caffe.cpp:204] ...`,
the year after the letter with glog 0.6). What the kit and Caffe keep beside the logs (snapshots, prototxts, links,
status and record files, a copied caffe.bin, dot files) is passed over by name; any other file that is not a log is
passed over by content, quietly.
"""
import os
import re
import zlib
from pathlib import Path

NAMED_LOG = re.compile(r"\d{6}_\d{6}_.+\.(?:log|[eo]\d+)(?:\.gz)?")
NOT_LOG_SUFFIXES = (".caffemodel", ".solverstate", ".prototxt", ".binaryproto", ".json", ".lock", ".bin", ".h5",
                    ".png", ".pdf", ".svg", ".pkl", ".npy", ".tmp", ".py", ".sh", ".md")
SNAPSHOT_ALIAS = re.compile(r".*_iter_\d+")  # the 2014 name of a snapshot (a link made by render and train)
SNIFF_BYTES = 64 << 10
CAFFE_LINE = re.compile(rb"^[IWEF]\d{4}(?:\d{4})? \d\d:\d\d:\d\d\.\d+ +\S+ [\w.+-]+\.(?:cpp|hpp|cu|cc|h):\d+\] ",
                        re.M)


def is_candidate(name) -> bool:
    """Whether a file of this name may be a log (the kit's own files, snapshots and dot files never are)."""
    return not (name.startswith(".") or name.endswith(NOT_LOG_SUFFIXES) or SNAPSHOT_ALIAS.fullmatch(name))


def read_head(path, size=SNIFF_BYTES) -> bytes:
    """The first `size` bytes of a file's text (gunzipped when it is gzip; b"" when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(size)
    except OSError:
        return b""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return zlib.decompressobj(31).decompress(raw, size)
    except zlib.error:
        return b""


def holds_caffe_log(path) -> bool:
    """Whether the file's first 64 KB hold a glog line written by Caffe."""
    return CAFFE_LINE.search(read_head(path)) is not None


def find_logs(folder) -> list[Path]:
    """The Caffe logs of a net folder, in name order (timestamped names sort oldest first)."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = []
    for entry in entries:
        name = entry.name
        if not is_candidate(name) or not entry.is_file():
            continue
        if NAMED_LOG.fullmatch(name) or holds_caffe_log(entry.path):
            found.append(name)
    return [Path(folder) / name for name in sorted(found)]


def newest_log(folder):
    """The log written last (by modification time: names like `log_file` say nothing of order), or None."""
    found = find_logs(folder)
    return max(found, key=lambda p: (p.stat().st_mtime_ns, p.name)) if found else None
