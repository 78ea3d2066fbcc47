"""A dataset folder's build record (db.json) and what both ways of building it share: where its images are, the
fixed-seed record order, whether finished output is up to date, the bad-image report and the disk check."""
import json
import shutil
from pathlib import Path

import numpy as np

from ..errors import XferError
from ..paths import write_text_atomic
from ..progress import say
from .lists import read_image_roots

RECORD_NAME = "db.json"
MEAN_NAME = "mean.binaryproto"
BAD_NAME = "bad_images.txt"
SHARED_DIR = "_images"


def part_of(dataset) -> str:
    return "valid" if dataset.endswith("_valid") else "train"


def image_root(dataset, images_root, data_dir) -> Path:
    """The folder a dataset's list paths are relative to: from --images (DIR/train, DIR/val) or the recorded roots."""
    part = part_of(dataset)
    if images_root is None:
        roots = read_image_roots(data_dir)
        if part not in roots:
            raise XferError(f"no image folder recorded for the {part} images", path=Path(data_dir) / "image_roots.json",
                            fix="pass --images DIR (holding train/ and val/)")
        return Path(roots[part])
    if isinstance(images_root, dict):
        return Path(images_root[part])
    root = Path(images_root)
    for sub in (("val", "valid", "validation") if part == "valid" else ("train",)):
        if (root / sub).is_dir():
            return root / sub
    return root


def database_order(n, seed):
    """The order records are written in: a fixed-seed permutation (never convert_imageset's unseeded --shuffle)."""
    if seed is None:
        return np.arange(n)
    return np.random.RandomState([seed]).permutation(n)


def read_record(folder) -> dict:
    path = Path(folder) / RECORD_NAME
    return json.loads(path.read_text()) if path.exists() else {}


def write_record(folder, record) -> None:
    write_text_atomic(Path(folder) / RECORD_NAME, json.dumps(record, indent=1, sort_keys=True) + "\n")


def state_of(folder, list_md5, settings) -> str:
    """'done' (complete, same list and settings), 'different' (complete, built otherwise), or 'todo'."""
    record = read_record(folder)
    if not record.get("complete"):
        return "todo"
    outputs_there = (Path(folder) / record.get("output", "")).exists() and (Path(folder) / MEAN_NAME).exists()
    same = record.get("list_md5") == list_md5 and all(record.get(k) == v for k, v in settings.items())
    if same and outputs_there:
        return "done"
    return "different" if outputs_there else "todo"


def write_bad_report(folder, bad) -> Path:
    """bad: [(files.txt line, image, reason)]."""
    path = Path(folder) / BAD_NAME
    lines = ["# files.txt line\timage\treason\n"] + [f"{line}\t{image}\t{reason}\n" for line, image, reason in bad]
    write_text_atomic(path, "".join(lines))
    return path


def bad_summary(dataset, bad, report) -> XferError:
    shown = "; ".join(f"{image} ({reason})" for _, image, reason in bad[:3])
    return XferError(f"{dataset}: {len(bad)} image(s) missing or unreadable, e.g. {shown}", path=report,
                     fix="restore these images, or pass --skip-bad to leave them out (they are counted in db.json)")


def check_disk(data_dir, need_bytes, what) -> None:
    free = shutil.disk_usage(data_dir).free
    say(f"xfer db: {what} need about {need_bytes / 1e9:.2f} GB on {data_dir} ({free / 1e9:.1f} GB free)")
    if need_bytes > free * 0.98:
        raise XferError(f"not enough disk: {what} need about {need_bytes / 1e9:.2f} GB, {free / 1e9:.2f} GB free",
                        path=data_dir, fix="free some disk, choose another --data-dir, build fewer datasets at once "
                                           "or use --shared-images")
