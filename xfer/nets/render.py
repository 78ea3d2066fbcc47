"""Registry -> net folders: solver, train and val prototxts from the Jinja2 templates, plus the relative links.

`xfer nets` lists the registry; `xfer render` writes <out>/<net>/ for every selected net:
  imagenet_solver.prototxt, imagenet_train.prototxt, imagenet_val.prototxt   (rendered, deterministic)
  imagenet_mean.binaryproto, imagenet_{train,val}_{lmdb|leveldb} -> <data dir>  (relative links)
  basenet -> ../<base>                                                        (nets with a base)
  caffe_imagenet_train_iter_<max_iter> -> caffe_imagenet_train_iter_<max_iter>.caffemodel
      the final snapshot under its 2014 name (no extension), so the original README's `caffe.bin train ...
      -weights basenet/caffe_imagenet_train_iter_450000` works as written; it dangles until the net finishes
With shared images (the datasets' disk-saving mode) the data layers read list files through an ImageData layer:
  imagenet_{train,val}_images.txt -> <data dir>/<dataset>/images.txt, imagenet_images -> <data dir>/_images.
Render never deletes or rewrites anything but its own files; logs and snapshots stay.
"""
import dataclasses
import filecmp
import functools
import os
import tempfile
import traceback
from pathlib import Path

from . import registry
from ..errors import XferError
from ..paths import DATA_DIR, RESULTS_DIR, TEMPLATES_DIR, atomic_path

RENDERED = ("imagenet_solver.prototxt", "imagenet_train.prototxt", "imagenet_val.prototxt")
BACKENDS = {"lmdb": "LMDB", "leveldb": "LEVELDB"}
SCHEDULE_KEYS = tuple(f.name for f in dataclasses.fields(registry.Schedule))
OVERRIDE_KEYS = SCHEDULE_KEYS + ("train_batch", "val_batch")
IMAGE_LIST, IMAGE_ROOT = "images.txt", "_images"


@functools.lru_cache(maxsize=None)
def template_env(templates_dir=TEMPLATES_DIR):
    """One Jinja environment per templates folder (it caches the compiled templates)."""
    import jinja2  # lazy for start-up: `xfer nets` and the verbs that only read the registry never render
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir)), undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True, autoescape=False)
    env.filters["num"] = format_number
    return env


def format_number(value) -> str:
    """Numbers as Caffe's own text writer prints them: 1 not 1.0, 0.0001 not 1e-04."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a number here")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        text = repr(value)
        return format(value, ".12f").rstrip("0") if "e" in text else text
    return str(value)


def template_error(exc, templates_dir=TEMPLATES_DIR) -> XferError:
    """A Jinja error as one XferError naming the template file and line."""
    path, line = getattr(exc, "filename", None), getattr(exc, "lineno", None)
    if path is None:  # runtime errors (undefined names): the template frame is in the traceback
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename.startswith(str(templates_dir)) or frame.filename.endswith(".j2"):
                path, line = frame.filename, frame.lineno
                break
    return XferError(f"template error: {getattr(exc, 'message', None) or exc}", path=path, line=line,
                     fix="fix the template (or the registry value it reads) and render again")


def split_overrides(overrides):
    """Check the override keys and split them into schedule fields and batch sizes."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
    if unknown:
        raise XferError(f"unknown override(s): {', '.join(unknown)}", fix=f"use any of: {', '.join(OVERRIDE_KEYS)}")
    batches = {k: overrides.pop(k) for k in ("train_batch", "val_batch") if k in overrides}
    return overrides, batches


def layer_context(net) -> dict:
    """Per weight layer: its name in this net, its shape and fillers, and (lr, lr, decay, decay) from the policy."""
    out = {}
    for layer, spec, pol in zip(registry.LAYERS, net.spec().layers, net.policy):
        frozen = pol in (registry.FROZEN, registry.RANDOM_FROZEN)
        out[layer] = dict(dataclasses.asdict(spec), name=net.layer_name(layer),
                          lr=(0, 0, 0, 0) if frozen else (1, 2, 1, 0))
    return out


def data_context(net, phase, backend, batch, shared_images) -> dict:
    arch = net.spec()
    common = dict(mirror=arch.train_mirror if phase == "train" else False, crop=arch.crop, batch_size=batch,
                  mean_file="imagenet_mean.binaryproto", scale=arch.scale)
    if shared_images:
        return dict(common, type="ImageData", source=f"imagenet_{phase}_images.txt", root_folder="imagenet_images/",
                    shuffle=False, is_color=arch.channels == 3)  # lists are pre-shuffled, read in order like a DB
    return dict(common, type="Data", source=f"imagenet_{phase}_{backend}", backend=BACKENDS[backend])


def net_context(net, backend="lmdb", overrides=None, shared_images=False) -> dict:
    if backend not in BACKENDS:
        raise XferError(f"unknown backend {backend!r}", fix="use lmdb or leveldb")
    schedule_over, batches = split_overrides(overrides)
    arch = net.spec()
    return dict(
        net=net, arch=arch, L=layer_context(net),
        s=dataclasses.replace(net.schedule, **schedule_over),
        train_data=data_context(net, "train", backend, batches.get("train_batch", arch.train_batch), shared_images),
        val_data=data_context(net, "val", backend, batches.get("val_batch", arch.val_batch), shared_images),
        pad_layers=net.name == "netbase",  # the 2014 netbase used separate padding layers (v0 templates only)
    )


def render_texts(net, backend="lmdb", overrides=None, shared_images=False, flavor="",
                 templates_dir=TEMPLATES_DIR) -> dict:
    """{file name: text} of a net's three prototxts; flavor "v0/" gives the 2014-syntax rendering."""
    import jinja2  # lazy for start-up, as in template_env
    env, context = template_env(Path(templates_dir)), net_context(net, backend, overrides, shared_images)
    try:
        return {name: env.get_template(f"{flavor}{name}.j2").render(context) for name in RENDERED}
    except jinja2.TemplateError as exc:
        raise template_error(exc, templates_dir) from None


def link_targets(net, net_dir, data_dir, backend="lmdb", shared_images=False, image_list=IMAGE_LIST,
                 image_root=IMAGE_ROOT, schedule=None) -> dict:
    """{link name: relative target} for a net folder; `schedule`: the rendered one (overrides applied)."""
    net_dir, data_dir = os.path.abspath(net_dir), os.path.abspath(data_dir)

    def rel(*parts):
        return os.path.relpath(os.path.join(data_dir, *parts), net_dir)

    links = {"imagenet_mean.binaryproto": rel(net.mean_data, "mean.binaryproto")}
    for phase, dataset in (("train", net.train_data), ("val", net.val_data)):
        if shared_images:
            links[f"imagenet_{phase}_images.txt"] = rel(dataset, image_list)
        else:
            links[f"imagenet_{phase}_{backend}"] = rel(dataset, backend)
    if shared_images:
        links["imagenet_images"] = rel(image_root)
    if net.base:
        links["basenet"] = os.path.join("..", net.base)
    alias = (schedule or net.schedule).final_alias
    if "/" not in alias:  # a snapshot_prefix naming another folder: that folder is not render's to make
        links[alias] = alias + ".caffemodel"
    return links


def is_snapshot_alias(path) -> bool:
    """A link `<prefix>_iter_N` -> `<prefix>_iter_N.caffemodel`, as link_targets makes them."""
    return path.is_symlink() and os.readlink(path) == path.name + ".caffemodel"


def stale_links(net_dir, links) -> list:
    """Links this command wrote before for another backend or data mode (only ever these are removed)."""
    names = [f"imagenet_{p}_{b}" for p in ("train", "val") for b in BACKENDS] + ["imagenet_images"]
    names += [f"imagenet_{p}_images.txt" for p in ("train", "val")]
    stale = [net_dir / n for n in names if n not in links and (net_dir / n).is_symlink()]
    # the 2014-name link of another max_iter or prefix (a render with other overrides)
    return stale + sorted(p for p in net_dir.glob("*_iter_*") if p.name not in links and is_snapshot_alias(p))


def write_rendered(path, text) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
        tmp.chmod(0o644)  # a plain readable file, like the rest of the tree (mkstemp makes 0600)


def write_link(path, target) -> None:
    if path.is_symlink() and os.readlink(path) == target:
        return
    if path.exists() and not path.is_symlink():
        raise XferError("exists and is not a link; render will not replace it", path=path,
                        fix="move it away, then render again")
    tmp = path.with_name(f".{path.name}.link.tmp")
    if tmp.is_symlink():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, path)  # atomic: the old link or the new one, never none


def changed_files(net_dir, texts) -> list:
    """Names of the rendered files in net_dir that exist and differ from `texts` ({name: text})."""
    return [n for n, t in texts.items() if (Path(net_dir) / n).exists() and (Path(net_dir) / n).read_text() != t]


def render_net(net, net_dir, data_dir, backend="lmdb", overrides=None, shared_images=False, force=False,
               image_list=IMAGE_LIST, image_root=IMAGE_ROOT) -> Path:
    net_dir = Path(net_dir)
    texts = render_texts(net, backend, overrides, shared_images)
    changed = changed_files(net_dir, texts)
    if changed and not force:
        raise XferError(f"{len(changed)} rendered file(s) differ from what the registry and templates give: "
                        f"{', '.join(changed)}", path=net_dir,
                        fix="pass --force (force=True) to overwrite them, or `xfer render --check` to list drift")
    net_dir.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        if not (net_dir / name).exists() or name in changed:
            write_rendered(net_dir / name, text)
    schedule = dataclasses.replace(net.schedule, **split_overrides(overrides)[0])
    links = link_targets(net, net_dir, data_dir, backend, shared_images, image_list, image_root, schedule)
    for stale in stale_links(net_dir, links):
        stale.unlink()
    for name, target in links.items():
        if name == schedule.final_alias and (net_dir / name).is_file() and not (net_dir / name).is_symlink():
            continue  # a 2014 snapshot of that very name (copied from the original tree): what the link would name
        write_link(net_dir / name, target)
    return net_dir


def render(nets, out_dir=RESULTS_DIR, data_dir=DATA_DIR, backend="lmdb", overrides=None, shared_images=False,
           force=False, image_list=IMAGE_LIST, image_root=IMAGE_ROOT) -> list:
    """Render every net into <out_dir>/<net.name>/; returns the net folders."""
    out_dir = Path(out_dir)
    return [render_net(net, out_dir / net.name, data_dir, backend, overrides, shared_images, force,
                       image_list, image_root) for net in nets]


def drift(nets, out_dir=RESULTS_DIR, data_dir=DATA_DIR, backend="lmdb", shared_images=False) -> list:
    """Every file of out_dir that differs from a fresh rendering (missing, edited, wrong link), as text lines."""
    out_dir, problems = Path(out_dir), []
    with tempfile.TemporaryDirectory(prefix="xfer-render-check.") as tmp:
        for net in nets:
            fresh = Path(tmp) / net.name
            fresh.mkdir()
            for name, text in render_texts(net, backend, shared_images=shared_images).items():
                (fresh / name).write_text(text)
                problems += compare_file(out_dir / net.name / name, fresh / name)
            for name, target in link_targets(net, out_dir / net.name, data_dir, backend, shared_images).items():
                have = out_dir / net.name / name
                if name == net.schedule.final_alias and have.is_file() and not have.is_symlink():
                    continue  # a 2014 snapshot of that name stands in for the link
                if not have.is_symlink():
                    problems.append(f"{have}: missing link (should point to {target})")
                elif os.readlink(have) != target:
                    problems.append(f"{have}: points to {os.readlink(have)}, should point to {target}")
    return problems


def compare_file(have, fresh) -> list:
    if not have.exists():
        return [f"{have}: missing"]
    if not filecmp.cmp(have, fresh, shallow=False):
        return [f"{have}: differs from the templates (re-render with `xfer render --force`)"]
    return []


def policy_letters(net) -> str:
    """One letter per layer: F frozen, T tuned, n fresh (new), R random-frozen, t trained."""
    letters = {registry.FROZEN: "F", registry.TUNED: "T", registry.FRESH: "n", registry.RANDOM_FROZEN: "R",
               registry.TRAINED: "t"}
    return "".join(letters[p] for p in net.policy)


def unknown_folders(out_dir, suite) -> list:
    """Folders holding a rendered net that the registry does not know (renamed or hand-made nets)."""
    known = {net.name for net in registry.nets(suite)}
    return sorted(p.parent.name for p in Path(out_dir).glob("*/imagenet_train.prototxt") if p.parent.name not in known)
