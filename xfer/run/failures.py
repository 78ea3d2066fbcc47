"""The one rule that sorts a failed training into one that may pass on a second try and one that cannot, and the
per-net count of the tries it got.

May pass (retried from the newest whole snapshot, up to `--retries N` times per net):
- Caffe died by a signal and left no fatal line: the OOM killer's SIGKILL, a segfault, a bus error;
- a CUDA, cuDNN, cuBLAS or driver error (a fatal `Check failed: error == cudaSuccess`, `CUDNN_STATUS_...`, an
  illegal address, a lost device), or memory that ran out (`std::bad_alloc`, `out of memory`);
- the trainer itself died by a signal (a lost node, the OOM killer), or the final snapshot was cut short.
Cannot pass (the net ends at once, its line in `xfer status`): any other fatal line of Caffe (`Check failed` on the
data or the net: a crop larger than the images, a database that is not there, shapes that do not fit); glibc's
heap-corruption abort (a label out of range: Caffe's release build checks labels only with DCHECK, writes past its
buffers and dies freeing the net); the kit's own refusals before Caffe starts (a label out of range, stale weights);
any other exit status.

The trainer (xfer/run/train.py) asks `classify` about its Caffe; the local runner and the SLURM job script ask
`trainer_exit` about the trainer. Both count tries in `<net>/.xfer_retries.json` through `take_retry`; `xfer run`
starts every net it trains with the count at 0.
"""
import json
import re
import signal
from dataclasses import dataclass
from pathlib import Path

from ..logs.tail import read_tail
from ..nets import layout
from ..paths import write_text_atomic
from .netdir import now_iso, read_json

RETRY_EXIT = 75  # EX_TEMPFAIL: `xfer train` failed in a way that may pass; start it again (it resumes)
DEFAULT_RETRIES = 2
# Fatal lines that say the device or the memory failed, not the net or its data.
MAY_PASS = re.compile(r"cudaSuccess|cuda(Error|GetLastError)|CUDNN_STATUS_(?!SUCCESS|BAD_PARAM|NOT_SUPPORTED)"
                      r"|CUBLAS_STATUS_|CURAND_STATUS_|illegal (memory )?address|unspecified launch failure|ECC error"
                      r"|no CUDA-capable|fallen off the bus|NVIDIA driver|out of memory|std::bad_alloc"
                      r"|host allocation of size", re.I)
# glibc's last words when a program wrote outside its memory (what Caffe's release build does with a label out of
# range: it trains, then dies freeing the net with SIGABRT): the same input does it again.
HEAP_CORRUPTION = re.compile(r"^(corrupted [^\n]*|double free or corruption[^\n]*|free\(\): invalid [^\n]*"
                             r"|malloc\(\): [^\n]*|munmap_chunk\(\): invalid pointer)$")
THROWN = re.compile(r"terminate called after throwing an instance of '([^']+)'")


@dataclass(frozen=True)
class Verdict:
    may_pass: bool
    reason: str


def fatal_line(log) -> str:
    """Caffe's reason for dying: the last glog FATAL line (`F... Check failed: ...`) of the log, if any."""
    fatal = [line for line in read_tail(log, 64 * 1024) if line.startswith("F")] if log else []
    return fatal[-1].split("] ", 1)[-1].strip() if fatal else ""


def signal_name(number) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def classify(returncode, log=None) -> Verdict:
    """The verdict on a `caffe train` that exited with `returncode` (negative: killed by that signal), its log the
    file `log`."""
    fatal = fatal_line(log)
    if fatal:  # glog's CHECK aborts (SIGABRT) after writing it: the line says why, not the signal
        return Verdict(bool(MAY_PASS.search(fatal)), fatal)
    last = read_tail(log, 16 * 1024) if log else []
    corrupted = [line.strip() for line in last if HEAP_CORRUPTION.match(line.strip())]
    if corrupted:
        return Verdict(False, f"caffe corrupted its memory ({corrupted[-1]}): a label out of range, or a bug")
    thrown = [m.group(1) for line in last for m in [THROWN.search(line)] if m]
    if thrown:
        return Verdict(bool(MAY_PASS.search(thrown[-1])), f"caffe threw {thrown[-1]}")
    if returncode < 0:
        return Verdict(True, f"caffe was killed by {signal_name(-returncode)}")
    return Verdict(False, f"caffe exited with status {returncode}")


def trainer_exit(returncode) -> str:
    """What a runner does after an `xfer train` child exited: "done" (0), "retry" (RETRY_EXIT: the trainer counted
    the try; negative: the trainer itself was killed, so the runner counts it), else "ended"."""
    if returncode == 0:
        return "done"
    if returncode == RETRY_EXIT or returncode < 0:
        return "retry"
    return "ended"


def retries_path(folder) -> Path:
    return Path(folder) / layout.RETRIES


def tries(folder, kind="tries") -> list:
    """The failures retried so far in this campaign: [{"at", "reason"}]; kind "strays": the stray stops requeued."""
    return read_json(retries_path(folder)).get(kind, [])


def take_retry(folder, limit, reason, kind="tries") -> bool:
    """Count one more failure that may pass (or of `kind`); True while the net has retries left (at most `limit`)."""
    counts = read_json(retries_path(folder))
    done = counts.get(kind, [])
    if len(done) >= limit:
        return False
    counts[kind] = done + [{"at": now_iso(), "reason": reason}]
    write_text_atomic(retries_path(folder), json.dumps(counts, indent=1) + "\n")
    return True


def reset(folder) -> None:
    """A new campaign (`xfer run` typed again): the net gets its `--retries` afresh."""
    retries_path(folder).unlink(missing_ok=True)
