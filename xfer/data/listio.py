"""Caffe image lists (`relative/path.JPEG label` per line): reading with checks, writing atomically, md5 sums.

Caffe's convert_imageset and ImageData layer split each line at its LAST space, so a path may hold spaces and
the label is the integer after it. Every problem is reported as file:line with what to do about it.
"""
from pathlib import Path

from ..errors import XferError
from ..paths import file_digest, write_text_atomic

LIST_NAME = "files.txt"          # the dataset's list, in the paper's layout: <data_dir>/<dataset>/files.txt
IDXMAP_NAME = "idxmap.txt"       # halves: original class id -> new class id


def parse_line(text: str, path, lineno: int):
    """One list line -> (relative path, label)."""
    stripped = text.rstrip("\n")
    if stripped.endswith("\r"):
        raise XferError("line ends with a carriage return (DOS line ending)", path=path, line=lineno,
                        fix="convert the file to Unix line endings (e.g. `sed -i 's/\\r$//' FILE`)")
    image, sep, label = stripped.rpartition(" ")
    if not sep or not image or image != image.strip() or not label.isdigit():
        raise XferError(f"malformed list line {stripped!r}", path=path, line=lineno,
                        fix="each line must be `relative/path.JPEG LABEL` with one space and an integer label >= 0")
    check_image_path(image, path, lineno)
    return image, int(label)


def check_image_path(image: str, path, lineno: int) -> None:
    """A list path must stay inside its image root: Caffe (root_folder + path) and the kit (os.path.join, which
    drops the root before an absolute path) would otherwise read images from anywhere on the machine."""
    if image.startswith("/"):
        raise XferError(f"image path {image!r} is absolute", path=path, line=lineno,
                        fix="list paths are relative to the image folder (--images, --train/--val); "
                            "write the path from that folder, e.g. `n01440764/n01440764_10026.JPEG 0`")
    if ".." in image.split("/"):
        raise XferError(f"image path {image!r} leaves the image root (a `..` part)", path=path, line=lineno,
                        fix="every listed image must lie under the image folder (--images, --train/--val); "
                            "move the image there or give that folder's parent as the image folder")


def read_list(path, n_classes=None, unique=True) -> list:
    """All (image, label) entries of a list, checked: well formed, labels in [0, n_classes), no duplicate image."""
    path = Path(path)
    if not path.is_file():
        raise XferError("list file not found", path=path, fix="create it first (`xfer imagenet-lists`, `xfer splits`)")
    entries, first_line = [], {}
    with open(path, encoding="utf-8", newline="") as lines:  # newline="": a DOS line ending must be seen
        for lineno, text in enumerate(lines, 1):
            image, label = parse_line(text, path, lineno)
            if n_classes is not None and label >= n_classes:
                raise XferError(f"label {label} out of range (the dataset has {n_classes} classes: 0..{n_classes - 1})",
                                path=path, line=lineno, fix="fix the label or the class list (synsets.txt)")
            if unique:
                if image in first_line:
                    raise XferError(f"duplicate entry {image} (first on line {first_line[image]})", path=path,
                                    line=lineno, fix="remove the repeated line")
                first_line[image] = lineno
            entries.append((image, label))
    if not entries:
        raise XferError("list is empty", path=path, fix="regenerate it from the image folders")
    return entries


def check_no_empty_class(entries, n_classes: int, path) -> None:
    """Every class 0..n_classes-1 has at least one image (a hole would shift every later class id)."""
    counts = class_counts(entries, n_classes)
    empty = [c for c, n in enumerate(counts) if n == 0]
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (" ..." if len(empty) > 10 else "")
        raise XferError(f"{len(empty)} class(es) have no images: {shown}", path=path,
                        fix="add images for these classes or drop them from the class list and renumber")


def label_summary(entries) -> dict:
    """The label record `xfer db` keeps in db.json: the range, the class count and the first list line (1-based)
    holding the lowest and the highest label, so a label out of a net's range is named without re-reading the list."""
    low = min(range(len(entries)), key=lambda i: entries[i][1])
    high = max(range(len(entries)), key=lambda i: (entries[i][1], -i))
    return {"min": entries[low][1], "max": entries[high][1], "classes": len({label for _, label in entries}),
            "min_line": low + 1, "max_line": high + 1}


def class_counts(entries, n_classes: int) -> list:
    counts = [0] * n_classes
    for _, label in entries:
        counts[label] += 1
    return counts


def n_classes_of(entries) -> int:
    return max(label for _, label in entries) + 1


def format_list(entries) -> str:
    return "".join(f"{image} {label}\n" for image, label in entries)


def write_list(path, entries, force=False) -> bool:
    """Write a list atomically. Same content already there: nothing to do (False). Different: only with force."""
    return write_if_changed(path, format_list(entries), force)


def write_if_changed(path, text: str, force=False, what="file") -> bool:
    path = Path(path)
    if path.exists():
        if path.read_text(encoding="utf-8") == text:
            return False
        if not force:
            raise XferError(f"{what} exists with different content", path=path,
                            fix="pass --force to overwrite it (databases built from it will be rebuilt)")
    write_text_atomic(path, text)
    return True


def md5_file(path) -> str:
    return file_digest(path, "md5")


def read_names(path) -> list:
    """A one-name-per-line file (synsets.txt): the first word of each non-empty line."""
    path = Path(path)
    if not path.is_file():
        raise XferError("file not found", path=path, fix="give the right path")
    names = []
    with open(path, encoding="utf-8") as lines:
        for lineno, text in enumerate(lines, 1):
            words = text.split()
            if not words:
                raise XferError("empty line", path=path, line=lineno, fix="remove the empty line")
            if words[0] in names:
                raise XferError(f"duplicate name {words[0]}", path=path, line=lineno, fix="remove the repeated line")
            names.append(words[0])
    return names
