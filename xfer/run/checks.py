"""What `xfer train` and `xfer run` check before Caffe starts: what Caffe's release build does not check itself.

- Labels: SoftmaxWithLoss and Accuracy check a label against the number of outputs only with DCHECK, so a label
  >= fc8's num_output trains "fine" with undefined results. `xfer db` records each dataset's label range in its
  db.json (with the first list line holding the highest label); a net whose training or validation data reach
  its outputs is refused, naming that line.
- Stale weights: a transfer's init.caffemodel was cut from one version of its base (init.manifest.json keeps the
  base file's sha256). When the base has been trained again since, a transfer that has not started redoes its
  surgery; one with snapshots is refused (it would go on from the old base) unless `--force` sets its progress
  aside and restarts it from the new base.
- A `caffe train` started by hand in the net folder (same host, found through /proc): a second one is not started.
"""
import functools
import os
import shutil
from datetime import datetime
from pathlib import Path

from .. import caffeenv
from ..data.listio import LIST_NAME, label_summary, read_list
from ..data.records import RECORD_NAME  # written by `xfer db` in each dataset folder
from ..errors import XferError
from ..nets import layout, registry
from ..progress import say
from .netdir import hand_trainings, net_dir, read_json, snapshots

DATA_TYPES = ("Data", "ImageData")
SET_ASIDE_GLOBS = (f"*_iter_*.{layout.WEIGHTS}", f"*_iter_*.{layout.STATE}", "*.log", layout.STATUS, layout.INIT,
                   layout.INIT_MANIFEST)


def train_command(net) -> str:
    return f"xfer train {net.name}" + ("" if net.suite == registry.default_suite() else f" --suite {net.suite}")


# ---- labels -----------------------------------------------------------------------------------------------------

def read_net(path):
    """A prototxt as Caffe's NetParameter (current syntax; None for the old `layers` syntax, which is not checked)."""
    param = caffeenv.read_net(path, old_syntax=True)
    return None if param.layers else param


def label_limits(param) -> list:
    """[(data source, outputs, layer)]: for each data layer, the fewest outputs any layer reading its labels has.

    A label consumer (SoftmaxWithLoss, Accuracy) is traced back from its first bottom through single-input layers
    (Softmax) to the InnerProduct that produces the scores; its num_output bounds the labels."""
    layers = list(param.layer)
    producer = {}
    for layer in layers:
        for top in layer.top:
            if top not in layer.bottom:  # in-place layers (ReLU, Dropout) do not replace the producer
                producer.setdefault(top, layer)
    limits = []
    for data in (layer for layer in layers if layer.type in DATA_TYPES and len(layer.top) > 1):
        source = data.data_param.source if data.type == "Data" else data.image_data_param.source
        bounds = [scores_layer(layer.bottom[0], producer) for layer in layers
                  if len(layer.bottom) > 1 and layer.bottom[1] == data.top[1]]
        bounds = [(b.inner_product_param.num_output, b.name) for b in bounds if b is not None]
        if bounds:
            limits.append((source,) + min(bounds))
    return limits


def scores_layer(blob, producer):
    layer = producer.get(blob)
    for _ in range(len(producer)):
        if layer is None or layer.type == "InnerProduct":
            return layer
        if len(layer.bottom) != 1:
            return None
        layer = producer.get(layer.bottom[0])
    return None


def dataset_labels(dataset_folder) -> tuple:
    """(label record, list file) of a dataset folder: db.json's record, or (an older build) one read from the list."""
    folder = Path(dataset_folder)
    record = read_json(folder / RECORD_NAME)
    list_path = folder / record.get("list", LIST_NAME)
    if record.get("labels"):
        return record["labels"], list_path
    if list_path.is_file():
        return list_labels(str(list_path), list_path.stat().st_mtime_ns), list_path
    return None, list_path


@functools.lru_cache(maxsize=None)
def list_labels(path, mtime_ns) -> dict:
    """The label record of a list, read once per version of it (ImageNet's whole list: 1.28 million lines)."""
    return label_summary(read_list(path, unique=False))


def check_labels(net, folder) -> None:
    """Refuse a net whose training or validation labels reach its number of outputs (both prototxts)."""
    for prototxt in (layout.TRAIN_NET, layout.VAL_NET):
        param = read_net(Path(folder) / prototxt)
        if param is None:
            say(f"{net.name}: labels not checked ({prototxt} uses the old `layers` syntax)")
            continue
        for source, outputs, layer in label_limits(param):
            data = (Path(folder) / source).resolve()
            if not data.exists():  # Caffe would only abort with `Check failed: mdb_status == 0 (2 vs. 0)`
                raise XferError(f"the data of net {net.name} is not there: {source} -> {data}", path=folder / source,
                                fix=f"build it with `xfer db --data-dir {data.parent.parent} {data.parent.name}`"
                                    " (or render the net against the data dir that holds it)")
            labels, list_path = dataset_labels(data.parent)
            if labels is None:
                say(f"{net.name}: labels not checked (no {RECORD_NAME} or {LIST_NAME} beside {data})")
            elif labels["max"] >= outputs:
                raise XferError(
                    f"label {labels['max']} is out of range for net {net.name}: its {layer} has {outputs} outputs "
                    f"(labels 0..{outputs - 1}); Caffe's release build would train on it silently with undefined "
                    f"results", path=list_path, line=labels["max_line"],
                    fix=f"correct the labels of {list_path.parent.name} (then `xfer db --data-dir "
                        f"{list_path.parent.parent} --force {list_path.parent.name}`), or train it with a net of "
                        "as many outputs as the dataset has classes")


# ---- stale weights ----------------------------------------------------------------------------------------------

def stale_base(net, folder):
    """(hash recorded at surgery, hash now, base file) when the base file changed since init.caffemodel was made;
    None when it did not, or when there is nothing to compare (no base, no init file, no base file)."""
    if not net.base:
        return None
    from . import surgery  # lazy for start-up: surgery loads numpy, which a net without a base never needs
    manifest = read_json(Path(folder) / layout.INIT_MANIFEST)
    if not manifest.get("base_sha256") or not (Path(folder) / layout.INIT).is_file():
        return None
    recorded = Path(manifest["base"]) if manifest.get("base") else None
    base = recorded if recorded and recorded.is_file() else surgery.default_base(net, folder)
    if not base.is_file():
        return None
    now = sha256_of(str(base), base.stat().st_mtime_ns, base.stat().st_size)
    return None if now == manifest["base_sha256"] else (manifest["base_sha256"], now, base)


@functools.lru_cache(maxsize=None)
def sha256_of(path, mtime_ns, size) -> str:
    """The file's sha256, once per version of it (`xfer run` asks for each base once, not once per transfer)."""
    from .surgery import sha256_file  # lazy, as in stale_base
    return sha256_file(path)


def has_progress(folder) -> bool:
    return bool(snapshots(folder, "caffemodel") or snapshots(folder, "solverstate"))


def stale_error(net, folder, stale) -> XferError:
    old, new, base = stale
    return XferError(f"net {net.name} was started from another version of its base {net.base}: {layout.INIT} "
                     f"was made from base sha256 {old}, {base} now has sha256 {new}; its snapshots would go on "
                     "from the old base", path=Path(folder) / layout.INIT_MANIFEST,
                     fix=f"`{train_command(net)} --force` restarts it from the new base (its snapshots and logs "
                         "are moved into a superseded_<time> folder), or restore the old base file")


def check_init_weights(net, folder, force=False) -> None:
    """Stale init weights: not started -> surgery again; snapshots -> refused, or with force set aside + restart."""
    stale = stale_base(net, folder)
    if stale is None:
        return
    if has_progress(folder):
        if not force:
            raise stale_error(net, folder, stale)
        moved = set_aside(folder)
        say(f"{net.name}: its base changed since its surgery; earlier progress moved to {moved}")
    else:
        say(f"{net.name}: its base changed since its surgery (sha256 {stale[0][:12]}… -> {stale[1][:12]}…); "
            "doing the surgery again")
    for name in (layout.INIT, layout.INIT_MANIFEST):
        (Path(folder) / name).unlink(missing_ok=True)  # start_args makes them again from the current base


def set_aside(folder) -> Path:
    """Move snapshots, logs, status and init weights into <folder>/superseded_<time>/ (kept, out of the way)."""
    target = Path(folder) / f"superseded_{datetime.now().strftime('%y%m%d_%H%M%S')}"
    target.mkdir()
    for pattern in SET_ASIDE_GLOBS:
        for path in Path(folder).glob(pattern):
            shutil.move(str(path), str(target / path.name))
    return target


def finished_but_stale(net, folder, force) -> bool:
    """A finished transfer whose base changed since: True (restart it) with force; else say so and keep it."""
    stale = stale_base(net, folder)
    if stale and not force:
        say(f"{net.name}: finished, but from an older version of its base {net.base} (sha256 {stale[0][:12]}…, "
            f"now {stale[1][:12]}…); `{train_command(net)} --force` restarts it from the new base")
    return bool(stale and force)


# ---- a caffe train started by hand ------------------------------------------------------------------------------

def caffe_trainings(folder) -> list:
    """[(pid, argv)] of the `caffe train` processes on this host whose working directory is the folder and that
    were not started by `xfer train` (its Caffe inherits the open lock file, so it is left out)."""
    return hand_trainings().get(os.path.realpath(folder), [])


def check_no_caffe_running(net, folder) -> None:
    """No `caffe train` that `xfer train` did not start runs in the folder (one that it did holds the lock)."""
    running = caffe_trainings(folder)
    if running:
        pid, argv = running[0]
        raise XferError(f"a `caffe train` not started by xfer is running in this folder (pid {pid}: "
                        f"{' '.join(argv)}); a second one would write the same snapshots", path=folder,
                        fix=f"wait for it to finish, or stop it (`kill -INT {pid}` snapshots first), then run "
                            f"`{train_command(net)}` again: it resumes from the newest snapshot")


# ---- all of them ------------------------------------------------------------------------------------------------

def before_caffe(net, folder, force=False) -> None:
    """`xfer train`, holding the net's lock: no other Caffe here, labels in range, init weights from this base."""
    check_no_caffe_running(net, folder)
    check_labels(net, folder)
    check_init_weights(net, folder, force)


def before_submit(nets, results) -> None:
    """`xfer run`, before anything is started or submitted: the same refusals for every net of the plan."""
    for net in nets:
        folder = net_dir(results, net.name)
        check_no_caffe_running(net, folder)
        check_labels(net, folder)
        stale = stale_base(net, folder)
        if stale and has_progress(folder):
            raise stale_error(net, folder, stale)
