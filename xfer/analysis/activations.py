"""A trained net's activations at its 8 weight layers on a fixed probe set of images, by pycaffe in TEST phase.

The probe set is the first `count` records of a dataset's database in key order: the kit's databases hold their
images in a shuffled order fixed by a seed, so the first records are a fixed random sample across the classes, and
the same count gives the same images every time.

Each net sees the images as it was trained to: its own mean file, crop and scale, read from its rendered
imagenet_val.prototxt, whose Data layer is replaced by an Input layer (a deploy-style net; no database is opened
by Caffe). The activations taken are the weight layers' top blobs: conv1..conv5, fc6, fc7 after their in-place
ReLU (dropout is the identity in TEST phase), fc8 its raw outputs. Layers are matched by position, so a
transfer net's `conv4-new` is its conv4.
"""
import os
import tempfile
from pathlib import Path

import numpy as np

from .. import caffeenv
from ..data import dbformat
from ..errors import XferError
from ..nets import layout, registry
from ..run import netdir

DEFAULT_IMAGES = 500
INPUT = "data"
BATCH = 100


def one_blas_thread():
    """BLAS on one thread: the analysis' matrices are small, and on a loaded machine OpenBLAS's threads spin
    against each other (measured here with other jobs running: one probe fit of 1000 x 128 features took 12.6 s
    on OpenBLAS's 2 threads, 0.27 s on one)."""
    from threadpoolctl import threadpool_limits  # lazy, as scikit-learn (which brings it)
    return threadpool_limits(limits=1, user_api="blas")


def net_folder(results, name) -> Path:
    """A net's folder: `name` in the results tree, or `name` itself when it is a path to a rendered net folder."""
    for folder in (Path(results) / name, Path(name)):
        if (folder / layout.SOLVER).is_file():
            return folder
    raise XferError(f"no rendered net {name} in {results}", path=Path(results) / name,
                    fix="name a net of the results tree (see `xfer status --results DIR`), pass --results DIR, "
                        "or give the path of a net folder")


def described(results) -> list:
    """(registry net, folder) of every rendered net folder of a results tree whose name the registry's grammar
    takes (in any suite: the names are the paper's)."""
    found = []
    for folder in sorted(Path(results).iterdir()) if Path(results).is_dir() else []:
        net = registry.describe(folder.name) if (folder / layout.SOLVER).is_file() else None
        if net is not None:
            found.append((net, folder))
    return found


def database_of(folder) -> Path:
    """The database a dataset folder (<data dir>/<dataset>) or a net's val link (imagenet_val_lmdb) holds."""
    folder = Path(folder)
    for path in (folder / "lmdb", folder / "leveldb", folder):
        if (path / "data.mdb").is_file() or (path / "CURRENT").is_file():
            return path
    raise XferError("no LMDB or LevelDB database here", path=folder,
                    fix="build it with `xfer db`, or name a dataset that has one")


def net_val_database(folder) -> Path:
    """The database a rendered net validates on (its imagenet_val_lmdb / _leveldb link)."""
    for backend in dbformat.BACKENDS:
        link = Path(folder) / layout.data_link("val", backend)
        if link.exists():
            return database_of(link)
    raise XferError("the net has no validation database link", path=folder,
                    fix="render it with `xfer render` against a data dir that `xfer db` built")


def data_dir_of(folder) -> Path:
    """The data dir a rendered net reads (where its mean file link points: <data dir>/<dataset>/mean.binaryproto)."""
    mean = Path(folder) / layout.MEAN_LINK
    if not mean.exists():
        raise XferError("the net has no mean file link", path=mean, fix="render it with `xfer render` first")
    return mean.resolve().parent.parent


def read_images(db, count=DEFAULT_IMAGES):
    """(uint8 images (N, C, H, W), int labels (N,)) of the first `count` records of a database."""
    db = Path(db)
    backend = "leveldb" if (db / "CURRENT").is_file() else "lmdb"
    images, labels = [], []
    for _, value in dbformat.iterate(backend, db):
        datum = dbformat.parse_datum(value)
        if datum["encoded"]:
            raise XferError("encoded (JPEG/PNG) records: the probe needs raw pixels", path=db,
                            fix="rebuild the database with `xfer db` without --encoded")
        shape = (datum["channels"], datum["height"], datum["width"])
        images.append(np.frombuffer(datum["data"], dtype=np.uint8).reshape(shape).copy())
        labels.append(datum["label"])
        if len(images) == count:
            break
    if not images:
        raise XferError("the database holds no records", path=db, fix="rebuild it with `xfer db`")
    if len({im.shape for im in images}) > 1:
        raise XferError("records of different sizes", path=db, fix="build it with `xfer db --resize N`")
    return np.stack(images), np.array(labels, dtype=np.int64)


def weights_of(folder) -> Path:
    """The final snapshot of a trained net (iteration max_iter of its rendered solver): the weights the paper's
    numbers describe. An unfinished net is refused rather than analysed half-trained."""
    folder = Path(folder)
    sched = netdir.solver_schedule(folder)
    if "max_iter" not in sched:
        raise XferError("no solver here: not a rendered net folder", path=folder / layout.SOLVER,
                        fix="name a net folder of a results tree (`xfer render` writes them)")
    final = folder / layout.snapshot_name(sched.get("snapshot_prefix", "caffe_imagenet_train"), sched["max_iter"])
    if not final.is_file():
        latest = netdir.latest_snapshot(folder)
        got = f" (its newest snapshot is iteration {latest[0]})" if latest else ""
        raise XferError(f"the net has not finished training{got}", path=final,
                        fix=f"train it first: `xfer run {folder.name}`")
    return final


def deploy_prototxt(folder, input_shape) -> str:
    """The net's val prototxt with its data layer replaced by an Input of `input_shape` (N, C, H, W) and the layers
    that need labels (accuracy, loss) left out; also the data layer's transform_param."""
    param = caffeenv.read_net(Path(folder) / layout.VAL_NET)
    kept = [layer for layer in param.layer if layer.type not in ("Data", "ImageData", "Input")
            and "label" not in layer.bottom]
    del param.layer[:]
    data = param.layer.add(name="data", type="Input")
    data.top.append("data")
    data.input_param.shape.add().dim.extend(input_shape)
    param.layer.extend(kept)
    from google.protobuf import text_format  # loaded with pycaffe already (read_net)
    return text_format.MessageToString(param)


def transform_of(folder) -> dict:
    """crop_size and scale of the net's val data layer (Caffe's DataTransformer settings in TEST phase)."""
    param = caffeenv.read_net(Path(folder) / layout.VAL_NET)
    for layer in param.layer:
        if layer.type in ("Data", "ImageData"):
            t = layer.transform_param
            return {"crop": t.crop_size, "scale": t.scale if t.HasField("scale") else 1.0}
    return {"crop": 0, "scale": 1.0}


def preprocess(images, mean, crop=0, scale=1.0) -> np.ndarray:
    """What Caffe's DataTransformer does in TEST phase: the centre crop, minus the mean at the same place, times
    scale."""
    height, width = images.shape[2:]
    top, left = ((height - crop) // 2, (width - crop) // 2) if crop else (0, 0)
    size_h, size_w = (crop, crop) if crop else (height, width)
    if mean.shape[1:] != (height, width) or mean.shape[0] != images.shape[1]:
        raise XferError(f"the mean file's shape {mean.shape} does not fit images of shape {images.shape[1:]}",
                        fix="use a probe set of the same image size and channels as the net's training set")
    window = (slice(None), slice(top, top + size_h), slice(left, left + size_w))
    return ((images[(slice(None),) + window].astype(np.float32) - mean[window]) * np.float32(scale))


def weight_tops(net) -> list:
    """(weight layer name, its top blob) of the net's weight layers, in order (conv1 .. fc8)."""
    return [(name, net.top_names[name][0]) for name in net.params]


def load_net(folder, input_shape):
    """The trained net (final snapshot) as a pycaffe Net in TEST phase, fed through an Input blob."""
    caffe = caffeenv.import_caffe()
    caffe.set_mode_cpu()
    with tempfile.NamedTemporaryFile("w", suffix=".prototxt", delete=False) as tmp:
        tmp.write(deploy_prototxt(folder, input_shape))
    try:
        return caffe.Net(tmp.name, str(weights_of(folder)), caffe.TEST)
    finally:
        os.unlink(tmp.name)


def activations(folder, images, layers=registry.LAYERS, batch=BATCH) -> dict:
    """{layer: float32 array (N, C, H, W) or (N, outputs)} of the net in `folder` on uint8 `images` (N, C, H, W);
    `layers` are the registry's names (conv1 .. fc8), matched to the net's weight layers by position."""
    folder = Path(folder)
    mean = dbformat.read_mean(folder / layout.MEAN_LINK)
    inputs = preprocess(images, mean, **transform_of(folder))
    net = load_net(folder, (min(batch, len(inputs)),) + inputs.shape[1:])
    tops = weight_tops(net)
    if len(tops) != len(registry.LAYERS):
        raise XferError(f"{len(tops)} weight layers, not the {len(registry.LAYERS)} of the paper's nets",
                        path=folder / layout.VAL_NET)
    # "data": the preprocessed input itself (a probe's n = 0: what the pixels alone give)
    wanted = [(layer, "data" if layer == INPUT else tops[registry.LAYERS.index(layer)][1]) for layer in layers]
    out = {layer: [] for layer in layers}
    with one_blas_thread():  # also Caffe's own OpenBLAS (threadpoolctl finds every BLAS the process loaded)
        for start in range(0, len(inputs), batch):
            chunk = inputs[start:start + batch]
            net.blobs["data"].reshape(*chunk.shape)
            net.blobs["data"].data[...] = chunk
            net.forward()
            for layer, top in wanted:
                out[layer].append(net.blobs[top].data.copy())
    return {layer: np.concatenate(parts) for layer, parts in out.items()}
