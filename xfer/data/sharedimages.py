"""The disk-saving mode: one resized image tree shared by every dataset, read by Caffe's ImageData layer.

The paper's 22 datasets hold most ImageNet images 8 times over (whole, four random halves, natman, reduced sets):
as databases of raw 256x256 pixels that is ~2 TB. Here each image is resized once, by the real convert_imageset
(`--encoded --encode_type=png`: OpenCV's own decode + resize, stored losslessly), into
  <data_dir>/_images/train/<path>.png, <data_dir>/_images/valid/<path>.png
and each dataset gets  <data_dir>/<dataset>/images.txt  (`train/<path>.png LABEL`, in the kit's fixed shuffled
order, paths relative to <data_dir>/_images/) for an ImageData layer with root_folder "<data_dir>/_images/",
shuffle false and no new_height/new_width: it decodes exactly the pixels a database record would hold.
Means are summed exactly (integers) from the decoded PNGs: equal to compute_image_mean's up to float rounding.
"""
import datetime
import json
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import XferError
from ..paths import write_bytes_atomic, write_text_atomic
from ..progress import say, tqdm
from . import dbformat, writers
from .listio import LIST_NAME, label_summary, md5_file, read_list
from .records import (MEAN_NAME, RECORD_NAME, SHARED_DIR, bad_summary, check_disk, database_order, image_root,
                      part_of, read_record, state_of, write_bad_report, write_record)

IMAGES_LIST = "images.txt"
TREE_RECORD = "images.json"
PNG_BYTES_PER_PIXEL = 0.75   # disk estimate for OpenCV's PNG of a resized photo (measured: docs/datasets.md)


def png_name(image: str) -> str:
    """The tree's file for a list path: the name kept, `.png` appended (no two sources can collide)."""
    return image + ".png"


class PngTreeSink:
    """Writes each record's PNG bytes to <tree>/<path>.png (atomically), instead of into a database."""

    def __init__(self, folder):
        self.folder, self.made = Path(folder), set()

    def put(self, key, value) -> None:
        image = bytes(key).split(b"_", 1)[1].decode("utf-8")
        target = self.folder / png_name(image)
        if target.parent not in self.made:
            target.parent.mkdir(parents=True, exist_ok=True)
            self.made.add(target.parent)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(dbformat.parse_datum(value)["data"])
        os.replace(tmp, target)

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


def check_tree_settings(tree, options, force) -> None:
    """The tree holds images of one size and colour mode; another one is only made with --force (from scratch)."""
    record_path = tree / TREE_RECORD
    wanted = {"resize": options.resize, "gray": options.gray, "format": "png"}
    if record_path.exists():
        had = json.loads(record_path.read_text())
        if had != wanted:
            if not force:
                raise XferError(f"the shared image tree was made with {had}, not {wanted}", path=record_path,
                                fix="pass --force to remake it (every dataset's images.txt is remade too)")
            shutil.rmtree(tree)
    tree.mkdir(parents=True, exist_ok=True)
    write_text_atomic(record_path, json.dumps(wanted, sort_keys=True) + "\n")


def make_tree_part(part, images, root, tree, options, jobs, progress) -> set:
    """Make the PNGs of one part (train/valid) that are not there yet; returns the images that failed."""
    todo = [(image, 0) for image in images if not (tree / part / png_name(image)).exists()]
    if not todo:
        return set()
    encoded = writers.Options(options.resize, options.gray, encode="png")
    record_disk = int(max(options.resize, 64) ** 2 * 3 * PNG_BYTES_PER_PIXEL)
    tmp_dir, block = writers.temp_and_block(len(todo), record_disk, jobs, tree)
    result = writers.write_parallel(todo, root, PngTreeSink(tree / part), encoded, jobs, tmp_dir, mean=False,
                                     progress=progress, block=block)
    return {todo[i][0] for i in result.failed_lines()}


def decode(path) -> np.ndarray:
    """A tree PNG as Caffe's CHW BGR (or 1xHxW gray) uint8 array."""
    with Image.open(path) as img:
        pixels = np.asarray(img)
    if pixels.ndim == 2:
        return pixels[np.newaxis]
    return pixels[:, :, ::-1].transpose(2, 0, 1)


def sum_images(keys, members, tree, n_datasets):
    """Exact per-dataset pixel sums over `keys` ((part, image) pairs); members[key] = dataset indices."""
    sums, shape = [None] * n_datasets, None
    for key in keys:
        pixels = decode(tree / key[0] / png_name(key[1]))
        if shape is None:
            shape = pixels.shape
        elif pixels.shape != shape:
            raise XferError(f"images of different sizes ({shape} and {pixels.shape}) cannot share a mean",
                            path=tree / key[0] / png_name(key[1]), fix="pass --resize N so that all have one size")
        for d in members[key]:
            if sums[d] is None:
                sums[d] = np.zeros(pixels.size, dtype=np.int64)
            sums[d] += pixels.ravel()
    return sums, shape


def dataset_means(keys, members, tree, n_datasets, counts, jobs) -> list:
    """One mean BlobProto per dataset; the images are decoded once each, on `jobs` threads."""
    pieces = [keys[i::jobs * 4] for i in range(jobs * 4)]
    totals, shape = [np.zeros(0, dtype=np.int64)] * n_datasets, None
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for sums, piece_shape in pool.map(lambda piece: sum_images(piece, members, tree, n_datasets), pieces):
            if piece_shape is not None and shape is not None and piece_shape != shape:
                raise XferError("images of different sizes cannot share a mean", path=tree,
                                fix="pass --resize N so that all have one size")
            shape = shape or piece_shape
            totals = [t if s is None else (s if t.size == 0 else t + s) for t, s in zip(totals, sums)]
    return [dbformat.mean_blob(totals[d].astype(np.float32) / np.float32(counts[d]), shape) for d in range(n_datasets)]


def build_shared(data_dir, names, images_root, options, jobs, skip_bad, force, seed) -> list:
    """The shared tree for the datasets `names`, their images.txt lists, means and db.json records."""
    data_dir, started = Path(data_dir), time.time()
    tree = data_dir / SHARED_DIR
    settings = {"backend": "images", "resize": options.resize, "gray": options.gray, "shuffle_seed": seed,
                "mode": "shared-images"}
    lists = {name: read_list(data_dir / name / LIST_NAME) for name in names}
    md5s = {name: md5_file(data_dir / name / LIST_NAME) for name in names}
    todo = [n for n in names if state_of(data_dir / n, md5s[n], settings) != "done"]
    for name in todo:
        if state_of(data_dir / name, md5s[name], settings) == "different" and not force:
            raise XferError(f"{name}: finished output built from another list or settings is there",
                            path=data_dir / name / RECORD_NAME, fix="pass --force to rebuild it")
    done = [read_record(data_dir / n) for n in names if n not in todo]
    if not todo:
        say("xfer db: the shared image lists are up to date")
        return done
    check_tree_settings(tree, options, force)
    roots = {part_of(n): image_root(n, images_root, data_dir) for n in todo}
    wanted = {part: sorted({image for n in todo if part_of(n) == part for image, _ in lists[n]}) for part in roots}
    new = sum(1 for part, images in wanted.items() for i in images if not (tree / part / png_name(i)).exists())
    pixels = max(options.resize, 64) ** 2 * (1 if options.gray else 3)
    check_disk(data_dir, int(new * pixels * PNG_BYTES_PER_PIXEL), f"{new} new shared image(s)")
    failed = {}
    with tqdm(total=new, desc="shared images", unit="img", disable=None) as bar:
        for part, images in wanted.items():
            missing = {i for i in images if not os.path.isfile(os.path.join(str(roots[part]), i))}
            if missing and not skip_bad:
                failed[part] = missing
                continue
            failed[part] = missing | make_tree_part(part, images, roots[part], tree, options, jobs, bar)
    return done + finish_datasets(data_dir, tree, todo, lists, md5s, failed, settings, skip_bad, jobs, started)


def finish_datasets(data_dir, tree, todo, lists, md5s, failed, settings, skip_bad, jobs, started) -> list:
    kept, bads = {}, {}
    for name in todo:
        part = part_of(name)
        bads[name] = [(line, image, "missing or unreadable") for line, (image, _) in enumerate(lists[name], 1)
                      if image in failed.get(part, ())]
        if bads[name]:
            report = write_bad_report(data_dir / name, bads[name])
            if not skip_bad:
                raise bad_summary(name, bads[name], report)
        order = database_order(len(lists[name]), settings["shuffle_seed"])
        kept[name] = [lists[name][i] for i in order if lists[name][i][0] not in failed.get(part, ())]
    members = {}
    for d, name in enumerate(todo):
        for image, _ in kept[name]:
            members.setdefault((part_of(name), image), []).append(d)
    means = dataset_means(sorted(members), members, tree, len(todo), [len(kept[n]) for n in todo], jobs)
    records = []
    for name, mean in zip(todo, means):
        folder = data_dir / name
        write_record(folder, dict(read_record(folder), complete=False))
        text = "".join(f"{part_of(name)}/{png_name(image)} {label}\n" for image, label in kept[name])
        write_text_atomic(folder / IMAGES_LIST, text)
        write_bytes_atomic(folder / MEAN_NAME, mean.SerializeToString())
        record = dict(settings, dataset=name, list=LIST_NAME, list_md5=md5s[name], entries=len(lists[name]),
                      count=len(kept[name]), bad=len(bads[name]), labels=label_summary(lists[name]),
                      output=IMAGES_LIST,
                      root_folder=os.path.join(str(tree.resolve()), ""),
                      mean=MEAN_NAME, seconds=round(time.time() - started, 1),
                      built=datetime.datetime.now().isoformat(timespec="seconds"), complete=True)
        write_record(folder, record)
        records.append(record)
    return records
