"""What state a net's folder is in: snapshots, the status file, the training lock, the rendered schedule.

The trainer (xfer/run/train.py) writes `xfer_status.json` in the net folder; the SLURM backend writes
`xfer_slurm.json`. Everything else is read from the folder itself, so the state is right even for runs started by
hand with `caffe train`.
"""
import datetime
import fcntl
import json
import os
import re
from pathlib import Path

from ..errors import XferError
from ..nets import layout, record, registry
from ..paths import RESULTS_DIR, write_text_atomic


def results_root(results=None, suite=None) -> Path:
    """The results tree: --results when given, else where `xfer render` puts the suite (results/ for the paper)."""
    if results:
        return Path(results)
    return registry.default_results(suite)


def folder_suite(folder, suite=None) -> str:
    """The suite of a rendered net folder: its render record's (so a mini folder needs no --suite), else `suite`,
    else the default. A --suite that contradicts the record is an error, not a shape mismatch later."""
    recorded = record.recorded_suite(folder)
    if suite and recorded and suite != recorded:
        raise XferError(f"the folder was rendered for the {recorded} suite, not {suite}",
                        path=record.record_path(folder), fix=f"leave out --suite (or pass --suite {recorded})")
    return suite or recorded or registry.default_suite()


def tree_suite(results=None, suite=None) -> str:
    """The suite of a results tree: `suite` when given, else the record of its first rendered net folder (a tree
    holds one suite), else the default."""
    if suite or not results:
        return suite or registry.default_suite()
    for path in sorted(Path(results).glob(f"*/{layout.RENDER_RECORD}")):
        return folder_suite(path.parent)
    return registry.default_suite()


def net_dir(results, name) -> Path:
    return Path(results or RESULTS_DIR) / name


def snapshots(folder, kind="caffemodel") -> list[tuple[int, Path]]:
    """(iteration, path) of every `*_iter_N.<kind>` in the folder, oldest first."""
    found = []
    for path in Path(folder).glob(f"*_iter_*.{kind}"):
        match = layout.SNAPSHOT_RE.search(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_snapshot(folder, kind="caffemodel"):
    """(iteration, path) of the newest snapshot, or None."""
    found = snapshots(folder, kind)
    return found[-1] if found else None


def solver_schedule(folder, net=None) -> dict:
    """max_iter and snapshot_prefix of the folder's rendered solver (renders may override the registry's)."""
    found = {}
    try:
        text = (Path(folder) / layout.SOLVER).read_text()
    except FileNotFoundError:
        text = ""
    for key, pattern in (("max_iter", r"^\s*max_iter\s*:\s*(\d+)"),
                         ("snapshot_prefix", r'^\s*snapshot_prefix\s*:\s*"([^"]*)"')):
        match = re.search(pattern, text, re.M)
        if match:
            found[key] = int(match.group(1)) if key == "max_iter" else match.group(1)
    if net is not None:
        found.setdefault("max_iter", net.schedule.max_iter)
        found.setdefault("snapshot_prefix", net.schedule.snapshot_prefix)
    return found


def final_snapshot_path(net, results) -> Path:
    """The snapshot Caffe writes at the end of training: `<prefix>_iter_<max_iter>.caffemodel` in the net folder."""
    folder = net_dir(results, net.name)
    sched = solver_schedule(folder, net)
    return folder / layout.final_snapshot(sched)


def link_final_alias(net, results) -> None:
    """The final snapshot under its 2014 name too (`caffe_imagenet_train_iter_<max_iter>`, no extension), as the
    original README's `-weights basenet/...` names it. `xfer render` makes this link; a folder rendered before it
    gets it here. A file or link of that name already there is left alone."""
    final = final_snapshot_path(net, results)
    alias = final.with_name(layout.alias_of(final.name))
    if alias.parent == net_dir(results, net.name) and not (alias.exists() or alias.is_symlink()):
        try:
            alias.symlink_to(final.name)
        except FileExistsError:  # made by another process just now
            pass


def is_finished(net, results) -> bool:
    """A net is finished when its final snapshot (iteration max_iter) is complete: the file transfers start from.

    Caffe writes the .caffemodel, then the .solverstate; a run killed between the two leaves a .caffemodel that
    may be cut short, so the solverstate beside it (or a status file that saw Caffe finish) is the proof.
    """
    final = final_snapshot_path(net, results)
    if not final.is_file():
        return False
    state = final.with_name(layout.state_of(final.name))
    return state.is_file() or read_status(final.parent).get("state") == "finished"


def read_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def read_status(folder) -> dict:
    return read_json(Path(folder) / layout.STATUS)


def write_status(folder, **fields) -> dict:
    """Merge `fields` into the folder's status file (atomically; only the trainer holding the lock writes it)."""
    status = read_status(folder)
    status.update(fields, updated=now_iso())
    write_text_atomic(Path(folder) / layout.STATUS, json.dumps(status, indent=1, sort_keys=True) + "\n")
    return status


def now_iso() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def lock_holder(folder):
    """Who holds the training lock of a folder ("pid 123 on host"), or None when nobody trains it now.

    Probes with a shared non-blocking flock: it fails only while a trainer (or its caffe child) holds the lock.
    """
    path = Path(folder) / layout.LOCK
    if not path.exists():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


# ---- a `caffe train` started by hand (the original README's workflow) --------------------------------------------
CAFFE_NAMES = ("caffe", "caffe.bin")


def hand_trainings() -> dict:
    """{folder (real path): [(pid, argv)]} of the `caffe train` processes on this host that `xfer train` did not
    start (its Caffe inherits the open lock file); one pass over /proc serves a whole status table."""
    found = {}
    for pid in (name for name in os.listdir("/proc") if name.isdigit()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if os.path.basename(argv[0]).decode(errors="replace") not in CAFFE_NAMES or argv[1:2] != [b"train"]:
                continue
            cwd = os.readlink(f"/proc/{pid}/cwd")
            if not holds_lock(pid, cwd):
                found.setdefault(cwd, []).append((int(pid), [a.decode(errors="replace") for a in argv if a]))
        except (OSError, IndexError):  # gone meanwhile, or another user's process
            continue
    return found


def holds_lock(pid, folder) -> bool:
    lock = os.path.join(folder, layout.LOCK)
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == lock:
                return True
        except OSError:  # closed meanwhile
            continue
    return False
