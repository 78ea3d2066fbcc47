"""Parsed logs -> the paper's numbers, and `xfer summary`.

Per net, as the paper measured it (its notebook's mean_highest / mean_lowest): `top1` is the mean of the 10 highest
test accuracies over the run, `valid_loss` and `train_loss` the means of the 10 lowest test / train losses; `tests`
counts the test points and `last_iter` is the last iteration seen. `families` groups nets as the figures do (by the
registered families, xfer/nets/families.py): base, selffer BnB / BnB+, transfer AnB / AnB+, natman, random
(nolearn), reduced, preserve, each by layer n (or images per class) with mean and spread across the random splits.
"""
import csv
import io
import math
from pathlib import Path

import numpy as np

from ..errors import XferError
from ..logs import parser

KEYS = ("top1", "valid_loss", "train_loss", "tests", "last_iter")
TOP_K = 10  # the paper averages the 10 best test points, which smooths the noise of single tests


def find_output(tests: dict, word: str):
    """The test output called `word` ("accuracy", "loss"), else the first whose name contains it."""
    if word in tests:
        return tests[word]
    return next((series for name, series in tests.items() if word in name), None)


def mean_of(values):
    return float(np.mean(values)) if len(values) else None


def net_numbers(netlog) -> dict:
    """The paper's numbers for one net (None where the logs do not have them yet)."""
    accuracy, loss = find_output(netlog.tests, "acc"), find_output(netlog.tests, "loss")
    return {
        "top1": mean_of(accuracy.highest(TOP_K)) if accuracy is not None else None,
        "valid_loss": mean_of(loss.lowest(TOP_K)) if loss is not None else None,
        "train_loss": mean_of(netlog.loss.lowest(TOP_K)),
        "tests": len(accuracy) if accuracy is not None else max((len(s) for s in netlog.tests.values()), default=0),
        "last_iter": int(netlog.last_iter),
    }


def load(results_dir, nets=None, cache=True):
    """({net: numbers} for nets whose logs hold anything, {net: [problems]} for every net with one)."""
    root = Path(results_dir)
    if not root.is_dir():
        raise XferError("no such results tree", path=root,
                        fix="pass --results DIR, a folder holding one folder per net (results/<net>/*.log)")
    logs = parser.parse_tree(root, nets, cache=cache, detail="summary")  # no times or lr: not used here
    numbers, problems = {}, {}
    for name, netlog in logs.items():
        if netlog.files and (len(netlog.loss) or netlog.tests):
            numbers[name] = net_numbers(netlog)
        if netlog.problems():
            problems[name] = netlog.problems()
    return numbers, problems


def summarize(results_dir, nets=None) -> dict:
    """{net name: {top1, valid_loss, train_loss, tests, last_iter}} for the nets of a results tree with logs."""
    return load(results_dir, nets)[0]


def classify(name):
    """(series label, x) of a net for the figures, or None for names outside the grammar: the net's registered
    family places it (xfer/nets/families.py), and a series nobody registered is an error, not a dropped row."""
    from ..nets import families, registry  # here, not at the top: `xfer summary --format json` never classifies
    net = registry.describe(name)
    return None if net is None else families.place(net)


def families(numbers: dict, metric="top1") -> dict:
    """{series label: {x: {mean, std, min, max, count, values, nets}}} of one metric, x = layer n (0 for bases)
    or images per class (reduced)."""
    grouped = {}
    for name, row in sorted(numbers.items()):
        where = classify(name)
        if where is None or row.get(metric) is None:
            continue
        grouped.setdefault(where[0], {}).setdefault(where[1], []).append((name, row[metric]))
    out = {}
    for label, by_x in grouped.items():
        out[label] = {}
        for x in sorted(by_x):
            values = np.array([v for _, v in by_x[x]])
            out[label][x] = {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
                             "max": float(values.max()), "count": len(values), "values": values.tolist(),
                             "nets": [n for n, _ in by_x[x]]}
    return out


def format_value(value, digits=4):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(numbers: dict) -> str:
    rows = [("net", "family", "n") + KEYS]
    for name, row in sorted(numbers.items()):
        where = classify(name) or ("?", "")
        rows.append((name, where[0], str(where[1])) + tuple(format_value(row[k]) for k in KEYS))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in rows)


def family_table(numbers: dict, metric="top1") -> str:
    """Mean (min..max, count) of the metric per series and x: the paper's Figure 2-4 numbers in text."""
    lines = [f"{metric} by family (mean [min..max] xcount):"]
    for label, by_x in sorted(families(numbers, metric).items()):
        cells = [f"{x}: {s['mean']:.4f} [{s['min']:.4f}..{s['max']:.4f}] x{s['count']}" for x, s in by_x.items()]
        lines.append(f"  {label:<18} " + "; ".join(cells))
    return "\n".join(lines)


def to_csv(numbers: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("net",) + KEYS)
    for name, row in sorted(numbers.items()):
        writer.writerow((name,) + tuple("" if row[k] is None else row[k] for k in KEYS))
    return out.getvalue()


def problem_lines(problems: dict) -> list:
    """One line per net with a problem; nets that merely have no logs yet are listed together."""
    empty = sorted(n for n, p in problems.items() if p == [parser.NO_LOGS])
    lines = [f"{name}: " + "; ".join(problems[name]) for name in sorted(set(problems) - set(empty))]
    if empty:
        lines.append(f"no training logs yet ({len(empty)} nets): " + ", ".join(empty))
    return lines
