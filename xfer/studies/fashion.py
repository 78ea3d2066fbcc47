"""Fashion-MNIST (Debian's `dataset-fashion-mnist`) as an ImageNet-style image tree, for the demo.

The tree mirrors what `xfer imagenet-lists` reads: <root>/train/<class>/<n>.png and <root>/val/<class>/<n>.png.
Class folders are named `NN_<name>` so that sorting them (the kit's rule for class ids, as for WordNet ids) keeps
Fashion-MNIST's own label order; the paper's seeding then picks the same halves as on the raw labels.
"""
import gzip
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import XferError

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot")
# The natman analogue: "natural" = clothing (A), "man-made" = the other classes, footwear and bags (B).
CLOTHING = (0, 1, 2, 3, 4, 6)
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "val": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def class_folder(label: int) -> str:
    return f"{label:02d}_{CLASSES[label]}"


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format: magic, dims, big-endian sizes, uint8 data)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise XferError("not an IDX file of unsigned bytes", path=path, fix="reinstall dataset-fashion-mnist")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(split: str, source: Path = DEBIAN_DIR) -> tuple[np.ndarray, np.ndarray]:
    images_file, labels_file = (Path(source) / name for name in FILES[split])
    for path in (images_file, labels_file):
        if not path.exists():
            raise XferError("Fashion-MNIST file missing", path=path,
                            fix="apt-get install dataset-fashion-mnist (make setup installs it)")
    images, labels = read_idx(images_file), read_idx(labels_file)
    if len(images) != len(labels):
        raise XferError(f"{len(images)} images but {len(labels)} labels", path=labels_file)
    return images, labels


def write_pngs(folder: Path, split: str, images, labels, workers: int | None = None) -> None:
    """One PNG per image; threads share the work (zlib and PIL's encoder release the GIL)."""
    workers = workers or os.cpu_count() or 1

    def write_range(start):
        for i in range(start, len(images), workers):
            Image.fromarray(images[i]).save(folder / class_folder(int(labels[i])) / f"{split}_{i:05d}.png",
                                            compress_level=1)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(write_range, range(workers)))  # list(): re-raise a worker's error here


def write_image_tree(root: Path, source: Path = DEBIAN_DIR, limit: int | None = None) -> dict[str, int]:
    """Write every image as PNG under root/{train,val}/<class>/; skip a split already written completely."""
    counts = {}
    for split in FILES:
        images, labels = load(split, source)
        if limit:
            images, labels = images[:limit], labels[:limit]
        done = root / split / ".complete"
        if done.exists() and done.read_text().strip() == str(len(images)):
            counts[split] = len(images)
            continue
        for label in range(len(CLASSES)):
            (root / split / class_folder(label)).mkdir(parents=True, exist_ok=True)
        write_pngs(root / split, split, images, labels)
        done.write_text(f"{len(images)}\n")  # written last: an interrupted tree is redone, never half-used
        counts[split] = len(images)
    return counts
