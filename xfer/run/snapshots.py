"""Which snapshots of a net folder are whole, so that no cut or unreadable file is ever trained from or copied.

A run killed while Caffe writes a snapshot, or a disk that fills at the last write, leaves a `.caffemodel` or a
`.solverstate` cut short. Caffe would abort on it at best, and a file cut between two layers even parses. So:
- a `.caffemodel` is whole when its protobuf fields all end within the file (a cut inside a field leaves one that
  runs past the end) and every weight layer of the folder's `imagenet_train.prototxt` is in it with its blobs;
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
from ..nets import layout
from ..progress import say
from .netdir import final_snapshot_path, read_status, snapshots

WEIGHT_TYPES = ("Convolution", "InnerProduct")
BROKEN_SUFFIX = ".broken-"


def weight_layers(folder) -> tuple:
    """Names of the layers with weights in the folder's train net; () when it cannot be read (then only the parse
    and the blob sizes are checked)."""
    try:
        param = caffeenv.read_net(Path(folder) / layout.TRAIN_NET, old_syntax=True)
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
    """Cached by size and time: a runner polls the same files. The file is walked field by field (protobuf's wire
    format), reading layer names and skipping the blobs' values: a paper net's 244 MB, on shared storage, 170 times
    per `xfer run`, would take minutes to parse whole. A file cut inside a field is caught by a length that runs
    past its end; one cut between two layers by a weight layer it lacks."""
    try:
        with open(path, "rb") as handle:
            present = layers_with_blobs(handle, size)
    except (EOFError, ValueError) as exc:
        return f"does not parse ({exc}): cut short or damaged"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    missing = [name for name in wanted if name not in present]
    if missing or not present:
        return f"has no weights for layer {missing[0] if missing else 'any'}: cut short"
    return None


def layers_with_blobs(handle, size) -> set:
    """Names of the layers (current or V1 syntax) that hold blobs in the NetParameter of `handle`, `size` bytes."""
    pb2 = caffeenv.caffe_pb2()
    kinds = {}  # NetParameter field number -> (the layer message's name field, its blobs field)
    for field, message in (("layer", pb2.LayerParameter), ("layers", pb2.V1LayerParameter)):
        by_name = message.DESCRIPTOR.fields_by_name
        kinds[pb2.NetParameter.DESCRIPTOR.fields_by_name[field].number] = (by_name["name"].number,
                                                                           by_name["blobs"].number)
    present = set()
    for number, span in wire_fields(handle, 0, size):
        if number in kinds and span:
            name_field, blobs_field = kinds[number]
            name, blobs = None, False
            for inner, inner_span in wire_fields(handle, span[0], span[0] + span[1]):
                if inner == name_field and inner_span:
                    handle.seek(inner_span[0])
                    name = handle.read(inner_span[1]).decode(errors="replace")
                blobs = blobs or inner == blobs_field
            if blobs and name is not None:
                present.add(name)
    return present


def wire_fields(handle, start, end):
    """(field number, (offset, length) of a length-delimited value, else None) of each field between `start` and
    `end`; a value that runs past `end` raises EOFError."""
    handle.seek(start)
    while handle.tell() < end:
        key = varint(handle)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length = varint(handle)
            offset = handle.tell()
            if offset + length > end:
                raise EOFError(f"field {number} of {length} bytes runs past the end")
            yield number, (offset, length)
            handle.seek(offset + length)
        elif wire in (0, 1, 5):
            if wire == 0:
                varint(handle)
            else:
                handle.seek(handle.tell() + (8 if wire == 1 else 4))
            yield number, None
        else:
            raise ValueError(f"wire type {wire} of field {number}")
    if handle.tell() != end:
        raise EOFError("a value runs past the end")


def varint(handle) -> int:
    value, shift = 0, 0
    while True:
        byte = handle.read(1)
        if not byte:
            raise EOFError("cut inside a number")
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise ValueError("a number longer than 10 bytes")


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
    for _, path in reversed(snapshots(folder, layout.STATE)):
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
    state = final.with_name(layout.state_of(final.name))
    stamp = datetime.now().strftime("%y%m%d_%H%M%S")
    moved = []
    for path in (final, state):
        if path.is_file():
            target = path.with_name(path.name + BROKEN_SUFFIX + stamp)
            path.rename(target)
            moved.append(target)
    return moved
