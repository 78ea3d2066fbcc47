"""The miniatures' image sources, by the name a suite gives as its `task`: each writes an ImageNet-style tree
(<root>/{train,val}/<class>/*.png) from Debian packages alone and says which classes form the natman analogue's
"natural" half. The demo and `xfer recipe-search` make a suite's data through here; `xfer images` writes a tree.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import fashion, glyphs
from ..errors import XferError
from ..nets import registry


@dataclass(frozen=True)
class Task:
    name: str
    title: str                          # what the demo's first step says it writes
    write_image_tree: Callable          # (root, per_class) -> {"train": images, "val": images}
    class_names: Callable               # () -> names in class-id order
    natural_classes: Callable           # () -> class ids of halfnatmanA
    source: Path                        # the installed files it reads (checked before a long run starts)
    packages: str                       # the Debian packages holding them


def write_fashion(root, per_class=None) -> dict:
    if per_class:
        raise XferError("Fashion-MNIST is written whole (6000 train / 1000 val images per class)",
                        fix="leave out --per-class for the mini suite")
    return fashion.write_image_tree(root)


def write_glyphs(root, per_class=None) -> dict:
    return glyphs.write_image_tree(root, per_class=per_class or (glyphs.TRAIN_PER_CLASS, glyphs.VAL_PER_CLASS))


TASKS = {
    "fashion": Task("fashion", "Fashion-MNIST", write_fashion, lambda: fashion.CLASSES,
                    lambda: fashion.CLOTHING, fashion.DEBIAN_DIR, "dataset-fashion-mnist"),
    "glyphs": Task("glyphs", "glyphs of 10 scripts (200 classes)", write_glyphs, glyphs.class_names,
                   glyphs.natural_classes, glyphs.FONT_DIR, glyphs.PACKAGES),
}


def get(name) -> Task:
    if name not in TASKS:
        raise XferError(f"unknown image task {name!r}", fix=f"use one of: {', '.join(TASKS)}")
    return TASKS[name]


def of_suite(suite) -> Task:
    """The image source of a registered suite (an error for a suite whose images come from outside the kit)."""
    spec = registry.suite(suite)
    if not spec.task:
        raise XferError(f"the {suite} suite has no miniature images: its data is ImageNet's",
                        fix="use --suite " + " or ".join(s for s in registry.suite_names() if registry.suite(s).task))
    return get(spec.task)
