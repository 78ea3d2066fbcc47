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

from . import overrides as override_values
from . import layout, record, registry
from ..data.records import MEAN_NAME
from ..errors import XferError
from ..paths import DATA_DIR, RESULTS_DIR, TEMPLATES_DIR, atomic_path
from ..progress import say

RENDERED = layout.RENDERED
BACKENDS = {"lmdb": "LMDB", "leveldb": "LEVELDB"}
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


def layer_context(net, arch=None) -> dict:
    """Per weight layer: its name in this net, its shape and fillers, and (lr, lr, decay, decay) from the policy."""
    out = {}
    for layer, spec, pol in zip(registry.LAYERS, (arch or net.spec()).layers, net.policy):
        frozen = pol in (registry.FROZEN, registry.RANDOM_FROZEN)
        out[layer] = dict(dataclasses.asdict(spec), name=net.layer_name(layer),
                          lr=(0, 0, 0, 0) if frozen else (1, 2, 1, 0))
    return out


def data_context(net, phase, backend, batch, shared_images, crop=None) -> dict:
    arch = net.spec()
    common = dict(mirror=arch.train_mirror if phase == "train" else False, batch_size=batch,
                  crop=arch.crop if crop is None else crop,
                  mean_file=layout.MEAN_LINK, scale=arch.scale)
    if shared_images:
        # the lists are pre-shuffled and read in order, like a database
        return dict(common, type="ImageData", source=layout.image_list_link(phase),
                    root_folder=f"{layout.IMAGES_LINK}/", shuffle=False, is_color=arch.channels == 3)
    return dict(common, type="Data", source=layout.data_link(phase, backend), backend=BACKENDS[backend])


def net_context(net, backend="lmdb", overrides=None, shared_images=False) -> dict:
    if backend not in BACKENDS:
        raise XferError(f"unknown backend {backend!r}", fix="use lmdb or leveldb")
    applied = override_values.apply(net, overrides)
    arch, data = applied.arch, applied.data
    crop = data.get("crop")
    return dict(
        net=net, arch=arch, L=layer_context(net, arch),
        s=applied.schedule,
        train_data=data_context(net, "train", backend, data.get("train_batch", arch.train_batch), shared_images, crop),
        val_data=data_context(net, "val", backend, data.get("val_batch", arch.val_batch), shared_images, crop),
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

    links = {layout.MEAN_LINK: rel(net.mean_data, MEAN_NAME)}
    for phase, dataset in (("train", net.train_data), ("val", net.val_data)):
        if shared_images:
            links[layout.image_list_link(phase)] = rel(dataset, image_list)
        else:
            links[layout.data_link(phase, backend)] = rel(dataset, backend)
    if shared_images:
        links[layout.IMAGES_LINK] = rel(image_root)
    if net.base:
        links[layout.BASE_LINK] = os.path.join("..", net.base)
    alias = (schedule or net.schedule).final_alias
    if "/" not in alias:  # a snapshot_prefix naming another folder: that folder is not render's to make
        links[alias] = f"{alias}.{layout.WEIGHTS}"
    return links


def is_snapshot_alias(path) -> bool:
    """A link `<prefix>_iter_N` -> `<prefix>_iter_N.caffemodel`, as link_targets makes them."""
    return path.is_symlink() and os.readlink(path) == f"{path.name}.{layout.WEIGHTS}"


def stale_links(net_dir, links) -> list:
    """Links this command wrote before for another backend or data mode (only ever these are removed)."""
    names = [layout.data_link(p, b) for p in ("train", "val") for b in BACKENDS] + [layout.IMAGES_LINK]
    names += [layout.image_list_link(p) for p in ("train", "val")]
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


def rendered_schedule(net, overrides):
    """The net's schedule with the schedule overrides applied (what its solver file says)."""
    return override_values.apply(net, overrides).schedule


def is_kept_snapshot(path, alias) -> bool:
    """A real 2014 snapshot under the final snapshot's old name (copied from the original tree): it stands in
    for the link `<prefix>_iter_<max_iter>` that render would make, so it is neither replaced nor in the way."""
    path = Path(path)
    return path.name == alias and path.is_file() and not path.is_symlink()


def is_trained(net_dir) -> bool:
    """Whether training left snapshots in the folder (its weights came from the recipe on disk)."""
    return any(any(Path(net_dir).glob(f"*_iter_*.{kind}")) for kind in (layout.WEIGHTS, layout.STATE))


@dataclasses.dataclass
class NetPlan:
    """What a render would do in one net folder, sorted by what the folder's render record says."""
    net: object
    folder: Path
    texts: dict                                   # {file: text} a render writes now
    links: dict                                   # {link: target}
    record: dict                                  # the record a render leaves
    new: list = dataclasses.field(default_factory=list)      # files not there yet
    updates: list = dataclasses.field(default_factory=list)  # still as last rendered: follow the templates
    edited: list = dataclasses.field(default_factory=list)   # changed since the last render (or never recorded)
    relinks: list = dataclasses.field(default_factory=list)  # links that point elsewhere now (or are stale)
    blocked: list = dataclasses.field(default_factory=list)  # a real file or folder where a link belongs
    trained: bool = False
    recorded: bool = True                         # the folder had a render record
    alias: str = ""                               # the final snapshot's 2014 name (a link, or a kept 2014 file)

    def recipe_changes(self) -> list:
        return self.updates + self.edited + self.relinks

    def held_back(self, force) -> list:
        """Why this net is left as it is (empty: it may be rendered); --force overrides all but a blocked link."""
        why = [f"{name} exists and is not a link (render replaces only links: move it away)" for name in self.blocked]
        if force:
            return why
        edit = "edited by hand since its last render" if self.recorded else "differs and has no render record"
        why += [f"{name} {edit}" for name in self.edited]
        if self.trained and self.recipe_changes():
            why.append(f"trained (snapshots there) and its recipe would change: {', '.join(self.recipe_changes())}")
        return why


def plan_net(net, net_dir, data_dir, backend="lmdb", overrides=None, shared_images=False, image_list=IMAGE_LIST,
             image_root=IMAGE_ROOT, templates_dir=TEMPLATES_DIR) -> NetPlan:
    """Compare the folder with a fresh rendering and its render record; writes nothing. overrides=None: the ones
    the folder was last rendered with (`xfer render --set`), so a plain re-render keeps a user's schedule."""
    net_dir = Path(net_dir)
    if overrides is None:
        overrides = record.recorded_overrides(net_dir)
    texts = render_texts(net, backend, overrides, shared_images, templates_dir=templates_dir)
    schedule = rendered_schedule(net, overrides)
    alias = schedule.final_alias
    links = link_targets(net, net_dir, data_dir, backend, shared_images, image_list, image_root, schedule)
    version = record.version_digest(templates_dir, dict(entry=dataclasses.asdict(net), overrides=overrides or {},
                                                        backend=backend, shared_images=shared_images))
    new_record = record.make_record(net.name, net.suite, {n: record.text_sha256(t) for n, t in texts.items()},
                                    links, overrides, backend, shared_images, version)
    plan = NetPlan(net, net_dir, texts, links, new_record, trained=is_trained(net_dir), alias=alias)
    last = record.read_record(net_dir)
    plan.recorded, last = last is not None, (last or {}).get("files", {})
    for name in texts:
        have = record.file_sha256(net_dir / name)
        if have is None:
            plan.new.append(name)
        elif have != new_record["files"][name]:
            (plan.updates if have == last.get(name) else plan.edited).append(name)
    plan.relinks = [n for n, t in links.items() if (net_dir / n).is_symlink() and os.readlink(net_dir / n) != t]
    plan.relinks += [p.name for p in stale_links(net_dir, links)]
    plan.blocked = [n for n in links if (net_dir / n).exists() and not (net_dir / n).is_symlink()
                    and not is_kept_snapshot(net_dir / n, alias)]
    return plan


def apply_plan(plan, force=False) -> None:
    """Write what the plan says (each file atomically), then the record: a render cut short leaves files that
    equal either their last or their new rendering, which the next render sorts out."""
    plan.folder.mkdir(parents=True, exist_ok=True)
    for name in plan.new + plan.updates + (plan.edited if force else []):
        write_rendered(plan.folder / name, plan.texts[name])
    for stale in stale_links(plan.folder, plan.links):
        stale.unlink()
    for name, target in plan.links.items():
        if not is_kept_snapshot(plan.folder / name, plan.alias):
            write_link(plan.folder / name, target)
    record.write_record(plan.folder, **{k: v for k, v in plan.record.items() if k != "format"})


def render(nets, out_dir=RESULTS_DIR, data_dir=DATA_DIR, backend="lmdb", overrides=None, shared_images=False,
           force=False, image_list=IMAGE_LIST, image_root=IMAGE_ROOT, templates_dir=TEMPLATES_DIR) -> list:
    """Render every net into <out_dir>/<net.name>/; returns the net folders.

    Files still equal to their last rendering follow the templates; a file edited by hand since, or a trained
    net whose recipe would change, is left as it is (all of that net) and named in one XferError raised after
    every other net is written; force=True overwrites them."""
    out_dir = Path(out_dir)
    plans = [plan_net(net, out_dir / net.name, data_dir, backend, overrides, shared_images, image_list, image_root,
                      templates_dir) for net in nets]
    held = {plan.net.name: plan.held_back(force) for plan in plans if plan.held_back(force)}
    done = [plan for plan in plans if plan.net.name not in held]
    for plan in done:
        apply_plan(plan, force)
    report_render(done, force)
    if held:
        raise held_error(held)
    return [plan.folder for plan in plans]


def unbuilt_data(done) -> list:
    """The datasets (databases, means, lists) the rendered nets link to that are not there yet, sorted."""
    missing = set()
    for plan in done:
        for name, target in plan.links.items():
            if name.startswith("imagenet_") and not (plan.folder / target).exists():
                missing.add(Path(os.path.normpath(plan.folder / target)).parent)
    return sorted(missing)


def report_render(done, force) -> None:
    """One line per kind of change, so 170 identical updates read as one."""
    unbuilt = unbuilt_data(done)
    if unbuilt:
        say(f"{len(unbuilt)} dataset(s) the nets read are not built yet (links point at nothing), e.g. "
            f"{unbuilt[0]}: build them with `xfer db` before training", err=True)
    updated = [p for p in done if p.updates]
    if updated:
        files = sorted({name for p in updated for name in p.updates})
        say(f"{len(updated)} net(s) updated from the templates: {', '.join(files)}")
    relinked = [p for p in done if p.relinks]
    if relinked:
        names = sorted({name for p in relinked for name in p.relinks})
        say(f"{len(relinked)} net(s) relinked: {', '.join(names)}")
    overwritten = [p.net.name for p in done if force and p.edited]
    if overwritten:
        say(f"--force overwrote hand edits in {len(overwritten)} net(s): {registry.compress(overwritten)}")
    trained = [p.net.name for p in done if force and p.trained and p.recipe_changes()]
    if trained:
        say(f"--force changed the recipe of {len(trained)} trained net(s), under their snapshots: "
            f"{registry.compress(trained)}", err=True)


def held_error(held) -> XferError:
    lines = "\n".join(f"  {name}: {'; '.join(why)}" for name, why in held.items())
    return XferError(f"kept {len(held)} net(s) as they are (every other net is rendered):\n{lines}",
                     fix="see the changes with `xfer render --diff NET`; move a hand edit into the template or an "
                         "override and render again, or pass --force to overwrite (a trained net's snapshots then "
                         "no longer match its recipe)")


def drift(nets, out_dir=RESULTS_DIR, data_dir=DATA_DIR, backend="lmdb", shared_images=False, overrides=None) -> list:
    """Every file of out_dir that differs from a fresh rendering (missing, edited, wrong link), as text lines.
    The rendering uses `overrides` when given, else each folder's recorded ones (`xfer render --set`)."""
    out_dir, problems = Path(out_dir), []
    with tempfile.TemporaryDirectory(prefix="xfer-render-check.") as tmp:
        for net in nets:
            fresh = Path(tmp) / net.name
            fresh.mkdir()
            used = overrides if overrides is not None else record.recorded_overrides(out_dir / net.name)
            for name, text in render_texts(net, backend, used, shared_images=shared_images).items():
                (fresh / name).write_text(text)
                problems += compare_file(out_dir / net.name / name, fresh / name)
            schedule = rendered_schedule(net, used)
            for name, target in link_targets(net, out_dir / net.name, data_dir, backend, shared_images,
                                             schedule=schedule).items():
                have = out_dir / net.name / name
                if is_kept_snapshot(have, schedule.final_alias):
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
    return sorted(p.parent.name for p in Path(out_dir).glob(f"*/{layout.TRAIN_NET}") if p.parent.name not in known)
