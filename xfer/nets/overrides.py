"""Overrides: `xfer render --set KEY=VALUE` changes a suite's solver, batch sizes, crop or upper-layer shape for
every net it renders (and, with base_iter_scale, the training budget of the nets trained from scratch alone). Each
key has a type and a range; a bad one is one error naming the key and what it accepts. The overrides a folder was
rendered with are kept in its render record (record.py), so a later render, `--check`, `xfer train`, `xfer run`,
`xfer status` and the summary all follow the folder's own files rather than the registry's schedule.
"""
import dataclasses
import re

from ..errors import XferError
from . import registry, suites

LR_POLICIES = ("fixed", "step", "exp")  # the Caffe policies the rendered solver has every parameter for
PREFIX = re.compile(r"[A-Za-z0-9_.-]+")


def positive_int(text):
    value = int(text)
    if value < 1:
        raise ValueError("must be 1 or more")
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def positive_float(text):
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a number above 0")
    return value


def non_negative_float(text):
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError("must be a number of 0 or more")
    return value


def fraction(text):
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError("must be between 0 and 1")
    return value


def dropout(text):
    value = float(text)
    if not 0 <= value < 1:
        raise ValueError("must be at least 0 and below 1")
    return value


def boolean(text):
    words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
    if text.lower() not in words:
        raise ValueError("must be true or false")
    return words[text.lower()]


def one_of(choices):
    def parse(text):
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text
    return parse


def prefix(text):
    if not PREFIX.fullmatch(text):
        raise ValueError("must be a file name stem (letters, digits, _ . -)")
    return text


# key -> (parser, what it accepts): the schedule's fields, the data layers' batch sizes and the crop.
KEYS = {
    "max_iter": (positive_int, "an integer >= 1"),
    "snapshot": (non_negative_int, "an integer >= 0 (iterations between snapshots; 0: only the final one)"),
    "test_interval": (non_negative_int, "an integer >= 0 (0: no tests)"),
    "test_iter": (positive_int, "an integer >= 1 (val batches per test)"),
    "display": (non_negative_int, "an integer >= 0 (0: no loss lines)"),
    "base_lr": (positive_float, "a number > 0"),
    "stepsize": (positive_int, "an integer >= 1"),
    "gamma": (positive_float, "a number > 0"),
    "lr_policy": (one_of(LR_POLICIES), "one of " + ", ".join(LR_POLICIES)),
    "momentum": (fraction, "a number in 0..1"),
    "weight_decay": (non_negative_float, "a number >= 0"),
    "snapshot_prefix": (prefix, "a file name stem"),
    "solver_mode": (one_of(("CPU", "GPU")), "CPU or GPU"),
    "test_initialization": (boolean, "true or false"),
    "random_seed": (non_negative_int, "an integer >= 0"),
    "train_batch": (positive_int, "an integer >= 1 (images per training batch)"),
    "val_batch": (positive_int, "an integer >= 1 (images per val batch)"),
    "crop": (non_negative_int, "an integer >= 0 (0: whole images), at most the stored image side"),
    "fc_width": (positive_int, "an integer >= 1 (outputs of fc6 and fc7)"),
    "width_scale": (positive_float, "a number > 0 (outputs of conv1..fc7 times this, rounded to even; "
                                    "fc_width, when given, sets fc6/fc7 after it)"),
    "dropout_ratio": (dropout, "a number in 0..1, 1 excluded (dropout after fc6 and fc7)"),
    "base_iter_scale": (positive_int, "an integer >= 1 (nets trained from scratch run max_iter, stepsize, "
                                      "snapshot and test_interval times this; transfers keep theirs)"),
}
DATA_KEYS = ("train_batch", "val_batch", "crop")  # the data layers rather than the solver
SHAPE_KEYS = ("width_scale", "fc_width", "dropout_ratio")  # the network's widths and upper layers
SCALE_KEY = "base_iter_scale"
FC_LAYERS = (5, 6)  # fc6 and fc7 in the arch's 8 weight layers: fc8's width is the number of classes
ALLOWED = "allowed keys: " + ", ".join(KEYS)


def parse_value(key, text):
    """One override's value from its text, checked; an XferError naming the key and what it accepts."""
    if key not in KEYS:
        raise XferError(f"--set {key}: unknown key", fix=ALLOWED)
    parse, accepts = KEYS[key]
    try:
        return parse(text.strip())
    except ValueError as exc:
        reason = str(exc) if "must" in str(exc) else f"must be {accepts}"
        raise XferError(f"--set {key}={text}: {reason}", fix=f"{key} takes {accepts}; {ALLOWED}") from None


def parse_assignments(items) -> dict:
    """`["max_iter=200", "train_batch=32"]` -> {"max_iter": 200, "train_batch": 32} (checked; a key given twice:
    the last wins, as with any repeated option)."""
    out = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise XferError(f"--set {item!r}: expected KEY=VALUE", fix=f"e.g. --set max_iter=1000; {ALLOWED}")
        out[key.strip()] = parse_value(key.strip(), text)
    return out


def check(overrides, arch=None) -> dict:
    """Overrides given as values (from the API or a record): each key known and each value in range."""
    checked = {key: parse_value(key, value if isinstance(value, str) else text_of(value))
               for key, value in (overrides or {}).items()}
    if arch is not None and checked.get("crop", 0) > arch.image_size:
        raise XferError(f"--set crop={checked['crop']}: larger than the {arch.image_size}-pixel images of "
                        f"{arch.name} nets", fix=f"crop takes {KEYS['crop'][1]} ({arch.image_size})")
    return checked


@dataclasses.dataclass(frozen=True)
class Applied:
    """A net as rendered with overrides: its solver, its network shape and its data layers' values."""
    schedule: suites.Schedule
    arch: object
    data: dict


def apply(net, overrides) -> Applied:
    """The schedule, shape and data-layer values of `net` with `overrides` applied (checked first)."""
    checked = check(overrides, net.spec())
    data = {key: checked.pop(key) for key in DATA_KEYS if key in checked}
    shape = {key: checked.pop(key) for key in SHAPE_KEYS if key in checked}
    scale = checked.pop(SCALE_KEY, 1)
    schedule = dataclasses.replace(net.schedule, **checked)
    if "val_batch" in data and "test_iter" not in checked:
        schedule = resize_test_iter(net, schedule, data["val_batch"])
    if scale != 1 and is_from_scratch(net):
        schedule = scale_schedule(schedule, scale)
    return Applied(schedule, reshape(net.spec(), shape), data)


def resize_test_iter(net, schedule, val_batch):
    """A suite whose test_iter covers its val set once (the mini suite) keeps covering it at another val batch;
    a suite with a fixed test_iter (the paper's 1000 x 50) keeps it, as the paper's solver did."""
    images = registry.suite(net.suite).val_images
    if images is None:
        return schedule
    count = images.get(net.val_data, images["half"])
    return dataclasses.replace(schedule, test_iter=-(-count // val_batch))


def is_from_scratch(net) -> bool:
    """A net whose every layer trains from its fillers: a base (of a half, natman, reduced or whole) net."""
    return all(policy == registry.TRAINED for policy in net.policy)


def scale_schedule(schedule, scale):
    """A longer budget with the same shape: the step and the snapshot and test points move with max_iter, so the
    one final test of a mini run stays one final test (the summary's mean of the best tests is then the last)."""
    return dataclasses.replace(schedule, max_iter=schedule.max_iter * scale, stepsize=schedule.stepsize * scale,
                               snapshot=schedule.snapshot * scale, test_interval=schedule.test_interval * scale)


def scaled_width(width, scale) -> int:
    """A layer's outputs times `scale`, rounded to an even number (grouped convs split them in two), at least 2."""
    return max(2, 2 * round(width * scale / 2))


def reshape(arch, shape):
    if "width_scale" in shape:
        last = len(arch.layers) - 1  # fc8's width is the number of classes
        layers = tuple(layer if i == last else
                       dataclasses.replace(layer, num_output=scaled_width(layer.num_output, shape["width_scale"]))
                       for i, layer in enumerate(arch.layers))
        arch = dataclasses.replace(arch, layers=layers)
    if "fc_width" in shape:
        layers = tuple(dataclasses.replace(layer, num_output=shape["fc_width"]) if i in FC_LAYERS else layer
                       for i, layer in enumerate(arch.layers))
        arch = dataclasses.replace(arch, layers=layers)
    if "dropout_ratio" in shape:
        arch = dataclasses.replace(arch, dropout_ratio=shape["dropout_ratio"])
    return arch


def text_of(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def describe(overrides) -> str:
    return " ".join(f"{key}={text_of(value)}" for key, value in sorted(overrides.items())) or "none"
