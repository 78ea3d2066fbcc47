"""Schedule overrides: `xfer render --set KEY=VALUE` changes a suite's solver, batch sizes or crop for every net it
renders. Each key has a type and a range; a bad one is one error naming the key and what it accepts. The overrides
a folder was rendered with are kept in its render record (record.py), so a later render, `--check`, `xfer train`,
`xfer run`, `xfer status` and the summary all follow the folder's own files rather than the registry's schedule.
"""
import dataclasses
import re

from ..errors import XferError
from . import record, suites

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
}
SCHEDULE_FIELDS = tuple(f.name for f in dataclasses.fields(suites.Schedule))
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


def text_of(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def effective(folder, given=None) -> dict:
    """The overrides to render a folder with: those given now, else those it was last rendered with."""
    if given:
        return dict(given)
    return record.recorded_overrides(folder)


def describe(overrides) -> str:
    return " ".join(f"{key}={text_of(value)}" for key, value in sorted(overrides.items())) or "none"
