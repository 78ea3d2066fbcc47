"""Stage 2: the whole lists -> the paper's derivative lists, byte for byte (checked against the paper's md5 sums).

- half{s}A / half{s}B (s = 0..3): numpy's legacy RandomState seeded with `[s]` (a one-element list, as the original
  script's argparse `nargs=1` gave it) draws `choice(arange(n), n // 2, replace=False)`; sorted, that is A, the
  rest is B. Classes are renumbered 0.. in sorted order and the mapping is written to idxmap.txt.
- halfnatmanA / halfnatmanB: the natural classes (A) and the man-made ones (B), from WordNet 3.0.
- reducedNNNN_train: the first NNNN lines of each class, in file order.
A derivative is made for each whole list present (whole_train, whole_valid); reduced sets come from training only.
"""
from pathlib import Path

import numpy as np

from . import wordnet
from ..errors import XferError
from .listio import (IDXMAP_NAME, LIST_NAME, check_no_empty_class, md5_file, n_classes_of, read_list, read_names,
                     write_if_changed, write_list)
from ..progress import say
from ..paths import DATA_DIR, ROOT

SEEDS = (0, 1, 2, 3)
REDUCED_COUNTS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 750, 1000)
PARTS = ("train", "valid")
PAPER_MD5 = ROOT / "ilsvrc12" / "paper_md5sums.txt"


def whole_lists(data_dir) -> dict:
    """{part: entries} of the whole lists present in the data dir, checked (labels, duplicates, empty classes)."""
    known = synset_count(data_dir)
    lists = {}
    for part in PARTS:
        path = Path(data_dir) / f"whole_{part}" / LIST_NAME
        if path.exists():
            lists[part] = read_list(path, n_classes=known)
    if not lists:
        raise XferError("no whole list found", path=Path(data_dir) / "whole_train" / LIST_NAME,
                        fix="make the whole lists first with `xfer imagenet-lists`")
    n_classes = count_classes(data_dir, lists)
    for part, entries in lists.items():
        check_no_empty_class(entries, n_classes, Path(data_dir) / f"whole_{part}" / LIST_NAME)
    return lists


def synset_count(data_dir):
    synsets = Path(data_dir) / "synsets.txt"
    return len(read_names(synsets)) if synsets.exists() else None


def count_classes(data_dir, lists) -> int:
    """The class count: synsets.txt's length when the data dir has one, else the highest label + 1."""
    return synset_count(data_dir) or max(n_classes_of(entries) for entries in lists.values())


def random_half(seed: int, n_classes: int) -> list:
    """The A classes of random split `seed`, exactly as the original script drew them."""
    rng = np.random.RandomState([seed])
    return sorted(int(c) for c in rng.choice(np.arange(n_classes), n_classes // 2, replace=False))


def subset(entries, old_ids) -> list:
    """Entries of the given classes, in file order, with classes renumbered 0.. in sorted order."""
    new_of = {old: new for new, old in enumerate(sorted(old_ids))}
    return [(image, new_of[label]) for image, label in entries if label in new_of]


def idxmap_text(old_ids) -> str:
    return "# Orig_idx new_idx\n" + "".join(f"{old} {new}\n" for new, old in enumerate(sorted(old_ids)))


def write_pair(data_dir, name, a_ids, n_classes, lists, force) -> list:
    """half{name}A_* and half{name}B_* (files.txt + idxmap.txt) for each whole list present."""
    b_ids = sorted(set(range(n_classes)) - set(a_ids))
    written = []
    for part, entries in lists.items():
        for half, ids in (("A", a_ids), ("B", b_ids)):
            folder = Path(data_dir) / f"half{name}{half}_{part}"
            if write_list(folder / LIST_NAME, subset(entries, ids), force):
                written.append(folder / LIST_NAME)
            if write_if_changed(folder / IDXMAP_NAME, idxmap_text(ids), force, "class map"):
                written.append(folder / IDXMAP_NAME)
    return written


def make_random_halves(data_dir=DATA_DIR, seed=0, n_classes=None, force=False) -> list:
    """half{seed}A/B for every whole list present. Returns the files written (unchanged ones are left alone)."""
    lists = whole_lists(data_dir)
    n_classes = n_classes or count_classes(data_dir, lists)
    return write_pair(data_dir, str(seed), random_half(seed, n_classes), n_classes, lists, force)


def make_natman(data_dir=DATA_DIR, natural_classes=None, synsets=None, force=False) -> list:
    """halfnatmanA (natural) / halfnatmanB (man-made). `natural_classes`: class ids of the A half; None derives it
    from WordNet 3.0 for the ImageNet ids in `synsets` (default <data_dir>/synsets.txt)."""
    lists = whole_lists(data_dir)
    n_classes = count_classes(data_dir, lists)
    if natural_classes is None:
        synsets_path = Path(synsets or Path(data_dir) / "synsets.txt")
        names = read_names(synsets_path)
        if len(names) != n_classes:
            raise XferError(f"{len(names)} synsets but the whole lists have {n_classes} classes", path=synsets_path,
                            fix="give the synsets.txt the lists were made with (--synsets)")
        natural_classes = wordnet.natural_classes(names, synsets_path=synsets_path)
    natural = sorted(set(int(c) for c in natural_classes))
    if not natural or natural[0] < 0 or natural[-1] >= n_classes or len(natural) == n_classes:
        raise XferError(f"the natural classes must be a proper, non-empty subset of 0..{n_classes - 1}",
                        fix="pass class ids of the whole lists")
    return write_pair(data_dir, "natman", natural, n_classes, lists, force)


def first_per_class(entries, count: int) -> list:
    seen, kept = {}, []
    for image, label in entries:
        if seen.get(label, 0) < count:
            seen[label] = seen.get(label, 0) + 1
            kept.append((image, label))
    return kept


def make_reduced(data_dir=DATA_DIR, counts=REDUCED_COUNTS, force=False) -> list:
    """reducedNNNN_train: the first NNNN training images of each class (labels unchanged)."""
    train = whole_lists(data_dir).get("train")
    if train is None:
        raise XferError("reduced datasets need the training list", path=Path(data_dir) / "whole_train" / LIST_NAME,
                        fix="make it with `xfer imagenet-lists`")
    written = []
    for count in counts:
        path = Path(data_dir) / f"reduced{count:04d}_train" / LIST_NAME
        if write_list(path, first_per_class(train, count), force):
            written.append(path)
    return written


def wordnet_classes(data_dir, synsets=None) -> bool:
    path = Path(synsets or Path(data_dir) / "synsets.txt")
    return path.exists() and all(wordnet.is_wnid(name) for name in read_names(path))


def make_all(data_dir=DATA_DIR, seeds=SEEDS, synsets=None, natural_classes=None, counts=REDUCED_COUNTS,
             natman=True, force=False) -> list:
    """Every derivative list the whole lists allow; returns the files written."""
    written = []
    for seed in seeds:
        written += make_random_halves(data_dir, seed, force=force)
    if natman and natural_classes is None and not wordnet_classes(data_dir, synsets):
        say("xfer splits: the classes are not WordNet ids, so no natural/man-made halves "
              "(give natural_classes to make them)")
    elif natman:
        written += make_natman(data_dir, natural_classes, synsets, force=force)
    if "train" in whole_lists(data_dir):
        written += make_reduced(data_dir, counts, force=force)
    return written


def paper_md5sums(path=PAPER_MD5) -> dict:
    """{relative path: (md5, line)} of the paper's lists (the facts file, in `md5sum` format)."""
    sums = {}
    for lineno, text in enumerate(Path(path).read_text().splitlines(), 1):
        if not text.strip() or text.startswith("#"):
            continue
        fields = text.split()
        if len(fields) != 2 or len(fields[0]) != 32:
            raise XferError(f"malformed md5 line {text!r}", path=path, line=lineno, fix="`MD5  dataset/files.txt`")
        sums[fields[1]] = (fields[0], lineno)
    return sums


def verify(data_dir=DATA_DIR, md5sums=PAPER_MD5) -> list:
    """Compare every list present with the paper's md5; returns one message per mismatch ([] = all equal)."""
    mismatches = []
    for rel, (expected, lineno) in sorted(paper_md5sums(md5sums).items()):
        path = Path(data_dir) / rel
        if path.exists():
            actual = md5_file(path)
            if actual != expected:
                mismatches.append(f"{path}: md5 {actual}, the paper's is {expected} ({md5sums}:{lineno})")
    return mismatches


VERIFY_FIX = ("a derivative list differs when its whole list does: check that whole_train/whole_valid list the same "
              "images in the same order as Caffe's train.txt/val.txt (sorted WordNet ids), then rerun `xfer splits "
              "--force --verify`")


def verified_files(data_dir=DATA_DIR, md5sums=PAPER_MD5) -> list:
    return [rel for rel in sorted(paper_md5sums(md5sums)) if (Path(data_dir) / rel).exists()]
