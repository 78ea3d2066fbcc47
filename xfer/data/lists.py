"""Stage 1: image folders -> the whole lists (`whole_train/files.txt`, `whole_valid/files.txt`) and the class names.

Sources:
- a raw ILSVRC12 tree: `train/<wnid>/*.JPEG` plus a flat `val/` folder whose labels come from a file
  (Caffe's `val.txt`, `name wnid` lines, the Kaggle `LOC_val_solution.csv`, or the devkit's ground truth);
- Caffe's auxiliary files (`train.txt`, `val.txt`, `synsets.txt` from get_ilsvrc_aux.sh), checked and copied;
- any `class/xxx.jpg` tree (the demo's Fashion-MNIST, your own data): class names sorted -> labels 0..N-1.
Classes are numbered in sorted name order, which for ImageNet is sorted WordNet-id order, as in the paper.
The data dir also records where the images are (image_roots.json), so `xfer db` needs no --images.
"""
import json
import os
from pathlib import Path

from . import wordnet
from ..errors import XferError
from .listio import (LIST_NAME, check_no_empty_class, read_list, read_names, write_if_changed, write_list)
from ..paths import DATA_DIR, write_text_atomic
from ..progress import tqdm

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".ppm", ".pgm", ".pbm", ".tif", ".tiff", ".webp")
ROOTS_NAME = "image_roots.json"   # {"train": abs dir, "valid": abs dir}: the roots the lists' paths are relative to


def is_image(name: str, extensions=IMAGE_EXTENSIONS) -> bool:
    return name.lower().endswith(tuple(extensions))


def scan_class_tree(root, extensions=IMAGE_EXTENSIONS):
    """(sorted class names, {class: sorted relative paths}) of a `class/.../xxx.jpg` tree."""
    root = Path(root)
    if not root.is_dir():
        raise XferError("image folder not found", path=root, fix="give the folder that holds one sub-folder per class")
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        raise XferError("no class sub-folders", path=root, fix="the folder must hold one sub-folder per class")
    images = {}
    for name in tqdm(classes, desc=f"scan {root.name}", unit="class", disable=None):
        found = []
        for dirpath, dirnames, filenames in os.walk(root / name):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            found.extend(f"{rel}/{f}" for f in filenames if is_image(f, extensions))
        if not found:
            raise XferError(f"class {name} has no images", path=root / name,
                            fix="add images to it or remove the folder (every class needs at least one image)")
        images[name] = sorted(found)
    return classes, images


def scan_flat(root, extensions=IMAGE_EXTENSIONS) -> list:
    root = Path(root)
    if not root.is_dir():
        raise XferError("image folder not found", path=root, fix="give the validation image folder")
    return sorted(e.name for e in os.scandir(root) if e.is_file() and is_image(e.name, extensions))


def tree_entries(classes, images, class_index):
    """List entries in class order then path order (the order of Caffe's train.txt)."""
    return [(path, class_index[name]) for name in classes for path in images[name]]


def check_classes_known(val_classes, class_index, root):
    unknown = [c for c in val_classes if c not in class_index]
    if unknown:
        raise XferError(f"validation classes not among the training classes: {', '.join(unknown[:5])}", path=root,
                        fix="the validation tree must use the training tree's class folder names")


def write_whole_lists_from_folders(train_dir, val_dir, data_dir=DATA_DIR, extensions=IMAGE_EXTENSIONS, force=False):
    """`class/xxx.jpg` trees -> whole_train and whole_valid lists, synsets.txt / synset_words.txt, image roots.

    Returns {"classes": [...], "train": n, "valid": n}.
    """
    classes, train_images = scan_class_tree(train_dir, extensions)
    class_index = {name: i for i, name in enumerate(classes)}
    train = tree_entries(classes, train_images, class_index)
    valid = None
    if val_dir is not None:
        val_classes, val_images = scan_class_tree(val_dir, extensions)
        check_classes_known(val_classes, class_index, val_dir)
        valid = tree_entries(val_classes, val_images, class_index)
    write_outputs(data_dir, classes, train, valid, train_dir, val_dir, force)
    return {"classes": classes, "train": len(train), "valid": len(valid) if valid else 0}


def write_imagenet_lists(data_dir=DATA_DIR, train_dir=None, val_dir=None, val_labels=None, train_list=None,
                         val_list=None, synsets=None, force=False, check_files=True):
    """The ILSVRC12 forms: a raw tree (train/<wnid>/, flat val/ + labels) or Caffe's aux lists (train.txt, ...)."""
    if train_list is not None:
        return copy_aux_lists(data_dir, train_dir, val_dir, train_list, val_list, synsets, force, check_files)
    if train_dir is None:
        raise XferError("no training images given", fix="pass --train DIR (and --val DIR --val-labels FILE)")
    if val_dir is not None and val_labels is None and not has_subfolders(val_dir):
        raise XferError("the validation folder is flat, so its labels are needed", path=val_dir,
                        fix="pass --val-labels (Caffe's val.txt, LOC_val_solution.csv or the devkit ground truth)")
    if val_labels is None:
        return write_whole_lists_from_folders(train_dir, val_dir, data_dir, force=force)
    classes, train_images = scan_class_tree(train_dir)
    class_index = {name: i for i, name in enumerate(classes)}
    train = tree_entries(classes, train_images, class_index)
    names = scan_flat(val_dir)
    valid = val_entries(names, read_val_labels(val_labels, classes), val_labels, val_dir)
    write_outputs(data_dir, classes, train, valid, train_dir, val_dir, force)
    return {"classes": classes, "train": len(train), "valid": len(valid)}


def has_subfolders(path) -> bool:
    return Path(path).is_dir() and any(e.is_dir() for e in os.scandir(path))


def read_val_labels(path, classes) -> dict:
    """{image name or stem: label} from one of the known validation label formats."""
    path = Path(path)
    if not path.is_file():
        raise XferError("validation label file not found", path=path, fix="give the right --val-labels path")
    class_index = {name: i for i, name in enumerate(classes)}
    lines = path.read_text(encoding="utf-8").splitlines()
    if lines and lines[0].startswith("ImageId,"):
        return labels_from_kaggle_csv(lines, class_index, path)
    if lines and all(len(line.split()) == 1 for line in lines[:10]):
        return labels_from_devkit(lines, classes, path)
    labels = {}
    for lineno, text in enumerate(lines, 1):
        name, sep, label = text.rpartition(" ")
        if not sep:
            raise XferError(f"malformed label line {text!r}", path=path, line=lineno,
                            fix="lines must be `IMAGE LABEL` (integer) or `IMAGE WNID`")
        labels[name] = label_of(label, class_index, len(classes), path, lineno)
    return labels


def label_of(token, class_index, n_classes, path, lineno) -> int:
    if token.isdigit():
        if int(token) >= n_classes:
            raise XferError(f"label {token} out of range (0..{n_classes - 1})", path=path, line=lineno,
                            fix="the labels must index the sorted training classes")
        return int(token)
    if token not in class_index:
        raise XferError(f"class {token} is not a training class", path=path, line=lineno,
                        fix="the label file and the training tree must use the same class ids")
    return class_index[token]


def labels_from_kaggle_csv(lines, class_index, path) -> dict:
    labels = {}
    for lineno, text in enumerate(lines[1:], 2):
        image, _, prediction = text.partition(",")
        if not prediction:
            raise XferError(f"malformed CSV line {text!r}", path=path, line=lineno, fix="expected `ImageId,WNID ...`")
        labels[image] = label_of(prediction.split()[0], class_index, len(class_index), path, lineno)
    return labels


def labels_from_devkit(lines, classes, path) -> dict:
    """ILSVRC2012_validation_ground_truth.txt: line i holds the devkit id (1..1000) of image i; meta.mat maps ids."""
    meta = path.parent / "meta.mat"
    if not meta.is_file():
        raise XferError("devkit ground truth needs the devkit's meta.mat beside it", path=meta,
                        fix="keep the devkit's data/ folder intact, or use Caffe's val.txt instead")
    from scipy.io import loadmat  # only this rare form needs it (scipy comes with scikit-image)
    synsets = loadmat(str(meta), squeeze_me=True)["synsets"]
    wnid_of = {int(s["ILSVRC2012_ID"]): str(s["WNID"]) for s in synsets}
    class_index = {name: i for i, name in enumerate(classes)}
    labels = {}
    for lineno, text in enumerate(lines, 1):
        wnid = wnid_of.get(int(text)) if text.strip().isdigit() else None
        if wnid is None:
            raise XferError(f"unknown devkit class id {text!r}", path=path, line=lineno, fix="use the devkit's files")
        labels[f"ILSVRC2012_val_{lineno:08d}"] = label_of(wnid, class_index, len(classes), path, lineno)
    return labels


def val_entries(names, labels, labels_path, val_dir) -> list:
    entries = []
    for name in names:
        label = labels.get(name, labels.get(os.path.splitext(name)[0]))
        if label is None:
            raise XferError(f"no label for validation image {name}", path=labels_path,
                            fix=f"the label file must cover every image in {val_dir}")
        entries.append((name, label))
    return entries


def copy_aux_lists(data_dir, train_dir, val_dir, train_list, val_list, synsets, force, check_files):
    """Caffe's train.txt / val.txt / synsets.txt: checked (format, range, duplicates, files present) and copied."""
    if synsets is None:
        raise XferError("Caffe's lists need their synsets.txt", fix="pass --synsets synsets.txt")
    classes = read_names(synsets)
    train = read_list(train_list, n_classes=len(classes))
    check_no_empty_class(train, len(classes), train_list)
    valid = read_list(val_list, n_classes=len(classes)) if val_list else None
    if check_files:
        check_files_exist(train, train_dir, train_list)
        if valid:
            check_files_exist(valid, val_dir, val_list)
    write_outputs(data_dir, classes, train, valid, train_dir, val_dir, force)
    return {"classes": classes, "train": len(train), "valid": len(valid) if valid else 0}


def check_files_exist(entries, root, list_path) -> None:
    if root is None:
        raise XferError("cannot check the listed images without their folder", path=list_path,
                        fix="pass the image folder (--train / --val), or --no-check")
    root = str(root)
    for lineno, (image, _) in enumerate(tqdm(entries, desc=f"check {Path(list_path).name}", unit="img",
                                             disable=None), 1):
        if not os.path.isfile(os.path.join(root, image)):
            raise XferError(f"listed image {image} not found under {root}", path=list_path, line=lineno,
                            fix="fix the image folder (--train/--val) or the list")


def write_outputs(data_dir, classes, train, valid, train_dir, val_dir, force) -> None:
    data_dir = Path(data_dir)
    write_class_names(data_dir, classes, force)
    write_list(data_dir / "whole_train" / LIST_NAME, train, force)
    if valid:
        write_list(data_dir / "whole_valid" / LIST_NAME, valid, force)
    record_image_roots(data_dir, train_dir, val_dir)


def write_class_names(data_dir, classes, force=False) -> None:
    """synsets.txt (one class id per line, in label order) and synset_words.txt (`id words`)."""
    use_wordnet = all(wordnet.is_wnid(name) for name in classes)
    if use_wordnet:
        for i, name in enumerate(classes):
            wordnet.lookup(name, where=(Path(data_dir) / "synsets.txt", i + 1))
    words = [f"{name} {wordnet.words(name) if use_wordnet else name}\n" for name in classes]
    write_if_changed(Path(data_dir) / "synsets.txt", "".join(f"{n}\n" for n in classes), force, "class list")
    write_if_changed(Path(data_dir) / "synset_words.txt", "".join(words), force, "class names")


def record_image_roots(data_dir, train_dir, val_dir) -> None:
    roots = read_image_roots(data_dir)
    if train_dir is not None:
        roots["train"] = os.path.abspath(train_dir)
    if val_dir is not None:
        roots["valid"] = os.path.abspath(val_dir)
    write_text_atomic(Path(data_dir) / ROOTS_NAME, json.dumps(roots, indent=1, sort_keys=True) + "\n")


def read_image_roots(data_dir) -> dict:
    path = Path(data_dir) / ROOTS_NAME
    return json.loads(path.read_text()) if path.exists() else {}
