"""Weight surgery (`xfer surgery`): a transfer net's initial weights from its base; `xfer verify`: frozen stayed frozen.

Surgery builds the target net with pycaffe (so fresh layers get their fillers' initialisation exactly as Caffe
would give them), copies the blobs of the layers the registry's policy copies (frozen or tuned) from the base's
.caffemodel, checks every name and shape first (a clear error, not a Caffe CHECK abort), and writes the weights and
a manifest (which layer came from which file, sha256 of every copied blob). A `nolearn` net has no base: its init
file records the random values of its random-frozen layers so that verify can compare them later.
"""
import hashlib
import json
import tempfile
import zlib
from pathlib import Path

import numpy as np

from .. import caffeenv
from ..errors import XferError
from ..nets import layout, registry
from ..paths import atomic_path, file_digest, write_text_atomic
from ..progress import say
from . import snapshots
from .netdir import latest_snapshot, net_dir, now_iso, read_json, solver_schedule



def manifest_path(init_file) -> Path:
    init_file = Path(init_file)
    return init_file.with_name(layout.manifest_of(init_file.name))


def sha256_blob(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def sha256_file(path) -> str:
    return file_digest(path, "sha256")


def blob_shape(blob) -> tuple:
    if blob.HasField("shape"):
        return tuple(int(d) for d in blob.shape.dim)
    return tuple(int(d) for d in (blob.num, blob.channels, blob.height, blob.width))


def plain_shape(shape) -> tuple:
    """A shape without the leading 1s of Caffe's legacy 4-D blobs (old models store fc weights as 1x1xNxM)."""
    shape = tuple(shape)
    while len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    return shape


def read_blobs(path, names=None) -> dict:
    """{layer name: [float32 arrays]} from a .caffemodel (only `names` when given); current or V1 layer syntax."""
    path = Path(path)
    if not path.is_file():
        raise XferError("weights file not found", path=path, fix="train the base net first, or pass the right file")
    param = caffeenv.caffe_pb2().NetParameter()
    try:
        param.ParseFromString(path.read_bytes())
    except Exception as exc:  # protobuf's DecodeError and friends: a truncated or foreign file
        raise XferError(f"not a Caffe weights file ({type(exc).__name__}: cut short or damaged)", path=path,
                        fix="never copied from: `xfer run` trains the base again from its newest whole snapshot "
                            "(or pass another file)") from exc
    out = {}
    for layer in list(param.layer) + list(param.layers):
        if layer.blobs and (names is None or layer.name in names):
            out[layer.name] = [blob_array(b, path, layer.name) for b in layer.blobs]
    return out


def blob_array(blob, path, layer_name):
    values = np.asarray(blob.data, dtype=np.float32)
    if values.size != int(np.prod(blob_shape(blob))):
        raise XferError(f"layer {layer_name}: {values.size} values for a blob of shape {blob_shape(blob)}", path=path,
                        fix="the file is damaged; take the snapshot again or an earlier one")
    return values.reshape(blob_shape(blob))


def net_for_dir(folder, suite=None):
    """The registry net a rendered folder belongs to (its folder name), also for paper-tree names."""
    name = Path(folder).resolve().name
    try:
        return registry.get(name, suite)
    except XferError:
        return registry.parse_name(name, suite)


def input_prototxt(folder, net) -> str:
    """The net's train prototxt with its Data layers replaced by an Input of one image: no database is needed."""
    param = caffeenv.read_net(Path(folder) / layout.TRAIN_NET)
    spec = net.spec()
    kept = [layer for layer in param.layer if layer.type not in ("Data", "ImageData", "Input")]
    tops = [top for layer in param.layer if layer.type in ("Data", "ImageData") for top in layer.top]
    del param.layer[:]
    data = param.layer.add(name="data", type="Input")
    for top in tops or ["data", "label"]:
        data.top.append(top)
        shape = data.input_param.shape.add()
        shape.dim.extend([1, spec.channels, spec.input_size, spec.input_size] if top == "data" else [1])
    param.layer.extend(kept)
    from google.protobuf import text_format  # loaded with pycaffe already (read_net)
    return text_format.MessageToString(param)


def check_copy(net, base_blobs, target_shapes, base_file) -> None:
    """Every copied layer exists in both nets with equal blob shapes; fresh layers must not be copied by name."""
    for layer in net.copied_layers():
        if layer not in base_blobs:
            raise XferError(f"the base has no layer {layer!r} to copy (it has: {', '.join(base_blobs)})",
                            path=base_file, fix=f"pass the final snapshot of {net.base}")
        if layer not in target_shapes:
            raise XferError(f"net {net.name} has no layer {layer!r}", fix=f"re-render it: xfer render {net.name}")
        base_shapes = [a.shape for a in base_blobs[layer]]
        if [plain_shape(s) for s in base_shapes] != [plain_shape(s) for s in target_shapes[layer]]:
            raise XferError(f"shape mismatch in {layer}: base {base_shapes} vs {net.name} {target_shapes[layer]}",
                            path=base_file, fix=f"the base must be {net.base} of the same suite (same widths)")
    for layer in registry.LAYERS:
        if net.layer_name(layer) not in target_shapes:
            raise XferError(f"net {net.name} has no layer {net.layer_name(layer)!r} (policy "
                            f"{net.policy[registry.LAYERS.index(layer)]})", fix=f"re-render it: xfer render {net.name}")


def default_base(net, folder) -> Path:
    if not net.base:
        raise XferError(f"net {net.name} has no base net; pass --base")
    base_folder = Path(folder) / layout.BASE_LINK
    return base_folder / layout.final_snapshot(solver_schedule(base_folder, registry.get(net.base, net.suite)))


def surgery(folder, net=None, base_file=None, out=None, seed=None, force=False, suite=None) -> dict:
    """Write the net's init weights (default `<folder>/init.caffemodel`) and manifest; returns the manifest."""
    folder = Path(folder)
    net = net or net_for_dir(folder, suite)
    if not net.base and registry.RANDOM_FROZEN not in net.policy:
        raise XferError(f"net {net.name} copies no layers and freezes none at random: it trains from its fillers",
                        fix=f"train it directly: xfer train {net.name}")
    out = Path(out) if out else folder / layout.INIT
    if out.exists() and not force:
        raise XferError("init weights exist already", path=out, fix="pass --force to write them again")
    base_file = Path(base_file) if base_file else (default_base(net, folder) if net.base else None)
    problem = snapshots.weights_problem(base_file) if base_file and base_file.is_file() else None
    if problem:  # a file cut between two layers parses: refuse it here, not with a missing layer later
        raise XferError(f"the base's weights {problem}; {net.name} is not made from them", path=base_file,
                        fix="`xfer run` trains the base again from its newest whole snapshot (or pass another file)")
    base_blobs = read_blobs(base_file, set(net.copied_layers())) if base_file else {}

    caffe = caffeenv.import_caffe()
    caffe.set_mode_cpu()
    seed = zlib.crc32(net.name.encode()) if seed is None else seed
    caffe.set_random_seed(seed)
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt") as proto:
        proto.write(input_prototxt(folder, net))
        proto.flush()
        target = caffe.Net(proto.name, caffe.TRAIN)
    shapes = {name: [tuple(b.data.shape) for b in blobs] for name, blobs in target.params.items()}
    check_copy(net, base_blobs, shapes, base_file)

    layers = {}
    for layer, policy in zip(registry.LAYERS, net.policy):
        name = net.layer_name(layer)
        if layer in base_blobs:
            for blob, value in zip(target.params[name], base_blobs[layer]):
                blob.data[...] = value.reshape(blob.data.shape)
        entry = {"policy": policy, "source": str(base_file.resolve()) if layer in base_blobs else "filler",
                 "shapes": ["x".join(str(d) for d in b.data.shape) for b in target.params[name]]}
        if layer in base_blobs or policy == registry.RANDOM_FROZEN:
            entry["sha256"] = [sha256_blob(b.data) for b in target.params[name]]
        layers[name] = entry
    with atomic_path(out, suffix=".caffemodel") as tmp:
        target.save(str(tmp))
    manifest = {"net": net.name, "suite": net.suite, "init": str(out.resolve()), "seed": seed, "created": now_iso(),
                "base": str(base_file.resolve()) if base_file else None,
                "base_sha256": sha256_file(base_file) if base_file else None,
                "caffe_build": caffeenv.build_info().get("key"), "layers": layers}
    write_text_atomic(manifest_path(out), json.dumps(manifest, indent=1) + "\n")
    return manifest


def compare_layer(name, got, want) -> dict:
    """Bit-for-bit comparison of one layer's blobs (float32 bits, so -0.0 != 0.0 and NaNs compare by payload)."""
    if [plain_shape(a.shape) for a in got] != [plain_shape(b.shape) for b in want]:
        return {"layer": name, "ok": False, "detail": "shape differs"}
    got, want = [a.ravel() for a in got], [b.ravel() for b in want]
    differing = sum(int(np.count_nonzero(a.view(np.uint32) != b.view(np.uint32))) for a, b in zip(got, want))
    max_diff = max((float(np.max(np.abs(a - b))) if a.size else 0.0) for a, b in zip(got, want))
    detail = "bit-identical" if differing == 0 else f"{differing} values differ (max |diff| {max_diff:.3g})"
    return {"layer": name, "ok": differing == 0, "differing": differing, "detail": detail}


def reference_for(net, folder, manifest, layer) -> Path:
    """The file a frozen layer must still equal: the base for copied layers, the init file for random-frozen ones."""
    if net.policy[registry.LAYERS.index(layer)] == registry.RANDOM_FROZEN:
        init = Path(manifest.get("init") or Path(folder) / layout.INIT)
        if not init.is_file():
            raise XferError(f"{layer} of {net.name} is frozen at its random init, but the init file is gone",
                            path=init, fix="a nolearn net must start from `xfer surgery`'s init file; train it again")
        return init
    return Path(manifest.get("base") or default_base(net, folder))


def verify(net, results=None, snapshot=None, folder=None) -> dict:
    """Compare every frozen layer of the net's latest snapshot with its reference; {"ok", "snapshot", "layers"}."""
    folder = Path(folder) if folder else net_dir(results, net.name)
    if snapshot is None:
        latest = latest_snapshot(folder)
        if latest is None:
            raise XferError(f"net {net.name} has no snapshot to verify", path=folder,
                            fix=f"train it first: xfer train {net.name}")
        snapshot = latest[1]
    manifest = read_json(manifest_path(folder / layout.INIT))
    frozen = net.frozen_layers()
    got = read_blobs(snapshot, set(frozen))
    wanted = {}
    for layer in frozen:
        ref = reference_for(net, folder, manifest, layer)
        wanted.setdefault(ref, []).append(layer)
    rows = []
    for ref, layers in wanted.items():
        blobs = read_blobs(ref, set(layers))
        for layer in layers:
            if layer not in got or layer not in blobs:
                missing = snapshot if layer not in got else ref
                rows.append({"layer": layer, "ok": False, "detail": f"missing in {missing}"})
                continue
            row = compare_layer(layer, got[layer], blobs[layer])
            row["reference"] = str(ref)
            rows.append(row)
    return {"ok": all(r["ok"] for r in rows), "snapshot": str(snapshot), "layers": rows, "checked": now_iso()}


def say_report(net, report) -> None:
    say(f"{net.name}: {Path(report['snapshot']).name}")
    if not report["layers"]:
        say("  no frozen layers")
    for row in report["layers"]:
        ref = Path(row.get("reference", "")).name
        verdict = "ok" if row["ok"] else "CHANGED"
        say(f"  {row['layer']:<6} {verdict:<8} {row['detail']}" + (f" vs {ref}" if ref else ""))
    say("frozen layers unchanged" if report["ok"] else "FROZEN LAYERS CHANGED")
