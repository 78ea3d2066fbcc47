"""Numbers -> the paper's figures as PDF and PNG, and `xfer plot`.

    xfer plot --results results/ --out plots/                       # the reproduction
    xfer plot --results ../shared/paper/results --compare results/   # the paper's numbers, the reproduction over them

Every figure is drawn from what the results tree holds: a figure with some of its nets missing is drawn with the
ones present and says in small print which are missing (e.g. the demo, which trains split 0 only); a figure with
none of its nets is skipped with a message naming the nets it needs. Per-net problems (no logs, crashed run,
garbled lines) are reported one line per net. Files are written atomically.
"""
import re
from pathlib import Path

from ..errors import XferError
from ..nets import registry
from ..paths import atomic_path
from ..progress import say
from . import summary

# Which registry families each figure is drawn from (and so which nets it needs).
FIGURE_FAMILIES = {
    "figure 2": ("base", "selffer", "selffer-ft", "transfer", "transfer-ft"),
    "figure 3": ("natman-base", "natman-transfer", "nolearn", "netbase", "base", "transfer"),
    "reduced": ("reduced",),
    "preserve": ("preserve",),
}
# The nets without which a figure has nothing of its own to show (what a skipped figure asks for).
FIGURE_CORE = {"figure 2": FIGURE_FAMILIES["figure 2"],
               "figure 3": ("natman-base", "natman-transfer", "nolearn", "netbase"),
               "reduced": ("reduced",), "preserve": ("preserve",)}
FILE_NAMES = {  # the original repository's names for the same plots
    "points": "result_transfer", "lines": "result_transfer_lines", "lines_notext": "result_transfer_lines_notext",
    "figure3": "result_random_nm_combined", "reduced": "result_reduced", "reduced_log": "result_reduced_log",
    "preserve": "result_preserved", "compare": "compare_transfer_lines",
}


def guess_suite(names) -> str:
    """The registry suite a results tree belongs to: the first other suite it has names of that the default suite
    does not know (the mini suite's `transfer0B0B_1_3`), else the default suite."""
    default = registry.default_suite()
    known = {n.name for n in registry.nets(default)}
    for suite in registry.suite_names():
        own = {n.name for n in registry.nets(suite)} - known
        if any(n in own for n in names):
            return suite
    return default


def compress(names) -> str:
    """`transfer1A1B_1_1 ... transfer1A1B_1_7` -> `transfer1A1B_1_{1..7}`: a list of nets a person can read."""
    groups = {}
    for name in sorted(names):
        m = re.fullmatch(r"(.*_1_)(\d)", name)
        stem, n = (m[1], int(m[2])) if m else (name, None)
        groups.setdefault(stem, []).append(n)
    parts = []
    for stem, ns in groups.items():
        ns = sorted(n for n in ns if n is not None)
        if not ns:
            parts.append(stem)
        elif len(ns) == 1:
            parts.append(f"{stem}{ns[0]}")
        elif ns == list(range(ns[0], ns[-1] + 1)):
            parts.append(f"{stem}{{{ns[0]}..{ns[-1]}}}")
        else:
            parts.append(f"{stem}{{{','.join(map(str, ns))}}}")
    return ", ".join(parts)


def needed(figure, suite, core=False) -> set:
    families = (FIGURE_CORE if core else FIGURE_FAMILIES)[figure]
    return {n.name for n in registry.nets(suite) if n.family in families}


def missing_text(figure, present, suite, limit=8, expected=None) -> str:
    """One line naming the nets a figure would use that the results do not have (empty when none): whole splits
    that are absent by split, the rest by name. `expected`: only these net names count."""
    nets = [n for n in registry.nets(suite) if n.family in FIGURE_FAMILIES[figure]
            and (expected is None or n.name in expected)]
    missing = [n for n in nets if n.name not in present]
    if not missing:
        return ""
    splits = {}
    for net in nets:
        if net.split is not None:
            splits.setdefault(net.split, []).append(net.name in present)
    absent = sorted(s for s, seen in splits.items() if not any(seen))
    parts = [f"split {s} (all {len(splits[s])} nets)" for s in absent]
    rest = compress(n.name for n in missing if n.split not in absent)
    parts += rest.split(", ") if rest else []
    shown = "; ".join(parts[:limit]) + (f"; ... ({len(parts) - limit} more groups)" if len(parts) > limit else "")
    return f"Not in these results ({len(missing)} of {len(nets)} nets): {shown}"


def save(fig, out_base: Path) -> list:
    """The figure as out_base.pdf and out_base.png (written to temp files, then renamed)."""
    import matplotlib
    written = []
    with matplotlib.rc_context({"pdf.fonttype": 42}):  # no Type 3 fonts in the PDF, as the original notebook did
        for ext in ("pdf", "png"):
            target = out_base.with_suffix(f".{ext}")
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format=ext, dpi=150 if ext == "png" else None)
            written.append(target)
    return written


def figure2(summary_dict, out_path, style="points", annotate=True, suite=None, expected=None) -> list:
    """Figure 2 from {net: numbers}: style "points" (one marker per net) or "lines" (means, with the paper's
    numbered notes unless annotate=False). Works with any subset (e.g. one split); says what is missing: of the
    suite's Figure 2 nets, or of `expected` (net names) when a run meant only those (the demo)."""
    from . import draw as figures_draw  # lazy for start-up: it loads matplotlib
    fam = summary.families(summary_dict)
    if not any(k in fam for k in ("baseB", "BnB", "BnB+", "AnB", "AnB+")):
        raise XferError("figure 2 has nothing to plot", fix="it needs test results of some of: " +
                        compress(needed("figure 2", suite or guess_suite(summary_dict), core=True)))
    present = {name for name, row in summary_dict.items() if row.get("top1") is not None}
    note = missing_text("figure 2", present, suite or guess_suite(summary_dict), expected=expected)
    fig = figures_draw.figure2_points(fam, note) if style == "points" else \
        figures_draw.figure2_lines(fam, annotate, note)
    return save(fig, Path(out_path).with_suffix(""))


def plot_all(results_dir, out_dir, compare=None, nets=None, log=None) -> list:
    """Every figure the results allow, into out_dir; returns the files written. Problems go to `log` (stderr)."""
    from . import draw as figures_draw  # lazy for start-up: it loads matplotlib
    log = log or (lambda text: say(text, err=True))
    numbers, problems = summary.load(results_dir, nets)
    for line in summary.problem_lines(problems):
        log(line)
    out = Path(out_dir)
    suite = guess_suite(numbers)
    fam = summary.families(numbers)
    present = {name for name, row in numbers.items() if row["top1"] is not None}
    written = []

    def draw(figure, keys, make):
        if not any(k in fam for k in keys):
            log(f"{figure}: skipped, needs test results of some of: {compress(needed(figure, suite, core=True))}")
            return
        for name, fig in make(missing_text(figure, present, suite)):
            written.extend(save(fig, out / FILE_NAMES[name]))

    draw("figure 2", ("baseB", "BnB", "BnB+", "AnB", "AnB+"), lambda note: [
        ("points", figures_draw.figure2_points(fam, note)), ("lines", figures_draw.figure2_lines(fam, True, note)),
        ("lines_notext", figures_draw.figure2_lines(fam, False, note))])
    draw("figure 3", ("natman:natural", "natman:man-made", "random"), lambda note: [
        ("figure3", figures_draw.figure3_panel(fam, note))])
    draw("reduced", ("reduced",), lambda note: [
        ("reduced", figures_draw.reduced_figure(fam, False, note)),
        ("reduced_log", figures_draw.reduced_figure(fam, True, note))])
    if any(k.startswith("preserve") for k in fam):
        written.extend(save(figures_draw.preserve_figure(fam), out / FILE_NAMES["preserve"]))
    if compare:
        other, other_problems = summary.load(compare)
        for line in summary.problem_lines({f"{compare}: {k}": v for k, v in other_problems.items()}):
            log(line)
        other_fam = summary.families(other)
        if any(k in other_fam for k in ("BnB", "AnB")):
            fig = figures_draw.compare_figure(fam, other_fam, tree_label(results_dir), tree_label(compare))
            written.extend(save(fig, out / FILE_NAMES["compare"]))
        else:
            log(f"--compare {compare}: no selffer/transfer nets with test results there, nothing to overlay")
    return written


def tree_label(path) -> str:
    """A short name for a results tree in a legend: its last two folders (`paper/results`, `demo/results`)."""
    parts = Path(path).resolve().parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else str(path)
