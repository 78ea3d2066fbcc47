"""An ImageNet-shaped image tree without ImageNet, for `xfer rehearse`: the layout, names and class ids of ILSVRC12.

  <root>/train/<wnid>/<wnid>_<k>.JPEG          a few JPEGs per class, of varied sizes (some grayscale, as in ImageNet)
  <root>/val/ILSVRC2012_val_########.JPEG      flat, in a shuffled class order like the real validation set
  <root>/val.txt                               Caffe's form of the validation labels: `NAME LABEL` lines
The 1000 classes are real WordNet 3.0 noun ids (Debian's wordnet-base): 551 below the paper's man-made roots and 449
not, so `xfer splits` draws the natural/man-made halves from WordNet exactly as it does for ImageNet. The choice is
a pure function of the WordNet database (no randomness), and so are the pixels (numpy's seeded RandomState).
"""
import os
import shutil
from pathlib import Path

import numpy as np

from ..data import wordnet
from ..errors import XferError
from ..paths import write_text_atomic
from ..progress import tqdm

MANMADE, NATURAL = 551, 449  # ILSVRC12's split under the paper's roots (halfnatmanB, halfnatmanA)
TRAIN_PER_CLASS, VAL_PER_CLASS = 2, 1
# (width, height): landscape and portrait photos, one smaller than the 227 crop (the db resizes every image to 256)
SIZES = ((320, 256), (256, 341), (400, 300), (256, 256), (300, 400), (200, 150))
GRAY_EVERY = 7  # every 7th image is grayscale, like ImageNet's few one-channel JPEGs
DONE_FILE = ".complete"


def children_map(nouns) -> dict:
    children = {}
    for wnid, synset in nouns.items():
        for parent in synset.parents:
            children.setdefault(parent, []).append(wnid)
    return children


def below(roots, children) -> set:
    """Every synset reachable downwards from `roots` (hyponyms and instances), the roots included."""
    seen, todo = set(), list(roots)
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(children.get(current, ()))
    return seen


def evenly(items, count) -> list:
    """`count` items spread evenly over a sorted list (a fixed choice that samples every part of WordNet)."""
    if len(items) < count:
        raise XferError(f"WordNet has only {len(items)} candidate classes, {count} needed", fix=wordnet.INSTALL_FIX)
    return [items[i * len(items) // count] for i in range(count)]


def choose_classes(wordnet_dir=None, manmade=MANMADE, natural=NATURAL) -> list:
    """Sorted WordNet noun ids: `manmade` leaves below the man-made roots and `natural` leaves outside them."""
    nouns = wordnet.load_nouns(wordnet_dir)
    children = children_map(nouns)
    made = below(wordnet.MANMADE_ROOTS, children)
    leaves = sorted(wnid for wnid in nouns if wnid not in children)
    chosen = evenly([w for w in leaves if w in made], manmade) + evenly([w for w in leaves if w not in made], natural)
    return sorted(chosen)


def make_image(rng, label, size, gray):
    """A smooth picture: a 4x4 grid of colours (a class tint plus noise) scaled up; small as a JPEG."""
    from PIL import Image  # lazy for start-up: only the tree's writer draws images
    tint = np.array([(label * 37) % 256, (label * 91) % 256, (label * 53) % 256], dtype=np.int16)
    cells = np.clip(tint + rng.randint(-40, 41, (4, 4, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(cells, "RGB").resize(size, Image.BILINEAR)
    return image.convert("L") if gray else image


def save_jpeg(image, path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, "JPEG", quality=80)
    os.replace(tmp, path)


def write_train(root, classes, per_class, rng) -> int:
    count = 0
    for label, wnid in enumerate(tqdm(classes, desc="train images", unit="class", disable=None)):
        folder = root / "train" / wnid
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            size = SIZES[(label + k) % len(SIZES)]
            save_jpeg(make_image(rng, label, size, count % GRAY_EVERY == 0), folder / f"{wnid}_{k + 1}.JPEG")
            count += 1
    return count


def write_val(root, classes, per_class, rng) -> int:
    """Flat val/ in a shuffled order (ILSVRC2012_val_00000001.JPEG, ...) and val.txt with each image's label."""
    labels = rng.permutation(np.repeat(np.arange(len(classes)), per_class))
    (root / "val").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, label in enumerate(tqdm(labels, desc="val images", unit="img", disable=None), 1):
        name = f"ILSVRC2012_val_{i:08d}.JPEG"
        size = SIZES[(i * 5) % len(SIZES)]
        save_jpeg(make_image(rng, int(label), size, i % GRAY_EVERY == 0), root / "val" / name)
        lines.append(f"{name} {int(label)}\n")
    write_text_atomic(root / "val.txt", "".join(lines))
    return len(lines)


def write_tree(root, train_per_class=TRAIN_PER_CLASS, val_per_class=VAL_PER_CLASS, wordnet_dir=None) -> dict:
    """The whole tree under `root` (kept when a finished one of the same shape is there); returns its counts."""
    root = Path(root)
    shape = f"{train_per_class} {val_per_class}\n"
    done = root / DONE_FILE
    classes = choose_classes(wordnet_dir)
    if done.is_file() and done.read_text() == shape:
        return {"classes": len(classes), "train": len(classes) * train_per_class,
                "valid": len(classes) * val_per_class, "reused": True}
    for part in ("train", "val"):  # a tree of another shape (or cut short): written anew, no stray images
        shutil.rmtree(root / part, ignore_errors=True)
    rng = np.random.RandomState(0)
    train = write_train(root, classes, train_per_class, rng)
    valid = write_val(root, classes, val_per_class, rng)
    write_text_atomic(done, shape)  # last: a tree cut short by a kill is written again
    return {"classes": len(classes), "train": train, "valid": valid, "reused": False}
