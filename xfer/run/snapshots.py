"""Which snapshots of a net folder are whole, so that no cut or unreadable file is ever trained from or copied.

A run killed while Caffe writes a snapshot, or a disk that fills at the last write, leaves a `.caffemodel` or a
`.solverstate` cut short. Caffe would abort on it at best, and a file cut between two layers even parses. So:
- a `.caffemodel` is whole when it parses, every blob holds as many values as its shape says, and every weight
  layer of the folder's `imagenet_train.prototxt` is in it with its blobs;
- a `.solverstate` is whole when it parses, holds `current_step` (the last field Caffe writes) and names a
  `.caffemodel` beside it that is whole.
Resuming takes the newest whole solverstate; the final weights are checked before a net counts as done
(`final_problem`), and a broken final snapshot is set aside (renamed, kept) so the net is trained again from its
newest whole one.
"""
import functools
from datetime import datetime
from pathlib import Path

from .. import caffeenv
from ..errors import XferError
from ..progress import say
from .netdir import final_snapshot_path, read_status, snapshots

TRAIN_NET = "imagenet_train.prototxt"
WEIGHT_TYPES = ("Convolution", "InnerProduct")
BROKEN_SUFFIX = ".broken-"


def blob_count(blob) -> int:
    dims = list(blob.shape.dim) if blob.HasField("shape") else [blob.num, blob.channels, blob.height, blob.width]
    count = 1
    for dim in dims:
        count *= int(dim)
    return count


def weight_layers(folder) -> tuple:
    """Names of the layers with weights in the folder's train net; () when it cannot be read (then only the parse
    and the blob sizes are checked)."""
    try:
        param = caffeenv.read_net(Path(folder) / TRAIN_NET, old_syntax=True)
    except XferError:
        return ()
    return tuple(layer.name for layer in list(param.layer) if layer.type in WEIGHT_TYPES)


def weights_problem(path, folder=None):
    """Why the .caffemodel at `path` cannot be used (cut short, unreadable, a weight layer missing), or None."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    wanted = weight_layers(folder if folder is not None else path.parent)
    return _weights_problem(str(path), stat.st_size, stat.st_mtime_ns, wanted)


@functools.lru_cache(maxsize=256)
def _weights_problem(path, size, mtime_ns, wanted):
    """Cached by size and time: a runner polls the same files; a paper net's weights (244 MB) parse in a second."""
    param = caffeenv.caffe_pb2().NetParameter()
    try:
        param.ParseFromString(Path(path).read_bytes())
    except Exception as exc:  # protobuf's DecodeError: cut inside a field; OSError: unreadable
        return f"does not parse ({type(exc).__name__}): cut short or damaged"
    present = set()
    for layer in list(param.layer) + list(param.layers):
        for blob in layer.blobs:
            if len(blob.data) != blob_count(blob):
                return f"layer {layer.name}: {len(blob.data)} values for a blob of {blob_count(blob)}"
        if layer.blobs:
            present.add(layer.name)
    missing = [name for name in wanted if name not in present]
    if missing or not present:
        return f"has no weights for layer {missing[0] if missing else 'any'}: cut short"
    return None


def state_problem(path, folder=None):
    """Why the .solverstate at `path` cannot be resumed from, or None."""
    path = Path(path)
    state = caffeenv.caffe_pb2().SolverState()
    try:
        state.ParseFromString(path.read_bytes())
    except Exception:  # protobuf's DecodeError: a snapshot cut short; OSError: unreadable
        return "does not parse: cut short or damaged"
    # current_step is the last field Caffe writes: a file cut at a field boundary parses but lacks it
    if not state.HasField("current_step") or not state.learned_net:
        return "incomplete (no current_step)"
    weights = Path(folder or path.parent) / state.learned_net
    if not weights.is_file():
        return f"its weights {state.learned_net} are missing"
    problem = weights_problem(weights, folder)
    return f"its weights {state.learned_net} {problem}" if problem else None


def resume_point(folder):
    """The newest whole .solverstate (see the module's docstring); None when there is none. Broken ones are left
    alone (Caffe overwrites them when it gets there) and said once each."""
    for _, path in reversed(snapshots(folder, "solverstate")):
        problem = state_problem(path, folder)
        if problem is None:
            return path
        say(f"{path}: {problem}; not resuming from it", err=True)
    return None


def final_problem(net, results):
    """Why the net's final .caffemodel cannot be used (None when it is whole). A file the trainer checked when the
    net finished (same size and time, recorded in the status file) is not parsed again."""
    final = final_snapshot_path(net, results)
    try:
        stat = final.stat()
    except OSError:
        return "does not exist"
    checked = read_status(final.parent).get("final_checked") or {}
    if checked == final_record(final, stat):
        return None
    return weights_problem(final)


def final_record(final, stat=None) -> dict:
    stat = stat or Path(final).stat()
    return {"file": Path(final).name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def set_aside_final(net, results) -> list:
    """Rename the final .caffemodel and its .solverstate to `<name>.broken-<time>` (kept for a look, never read:
    snapshot listings want the extension last), so the net counts as unfinished and resumes from its newest whole
    snapshot. Returns the new paths."""
    final = final_snapshot_path(net, results)
    state = final.with_name(final.name.removesuffix(".caffemodel") + ".solverstate")
    stamp = datetime.now().strftime("%y%m%d_%H%M%S")
    moved = []
    for path in (final, state):
        if path.is_file():
            target = path.with_name(path.name + BROKEN_SUFFIX + stamp)
            path.rename(target)
            moved.append(target)
    return moved
