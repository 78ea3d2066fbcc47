"""Numbers -> the paper's figures as PDF and PNG, and `xfer plot`.

    xfer plot --results results/ --out plots/                       # the reproduction
    xfer plot --results paper --compare results/   # the paper's numbers (`xfer paper`), the reproduction over them

Every figure is drawn from what the results tree holds: a figure with some of its nets missing is drawn with the
ones present and says in small print which are missing (e.g. the demo, which trains split 0 only); a figure with
none of its nets is skipped with a message naming the nets it needs. Per-net problems (no logs, crashed run,
garbled lines) are reported one line per net. Files are written atomically.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import XferError
from ..nets import registry
from ..paths import atomic_path
from ..progress import say
from . import draw, summary  # draw loads matplotlib: only `xfer plot` and the studies import this module

@dataclass(frozen=True)
class Plot:
    """One file of a figure: its name (the original repository's, without extension) and the drawing function that
    makes it (draw.py's, or any other), called as function(families, missing=note, **options), plus each Suite
    attribute named in suite_options (what only the suite knows, e.g. what its natman halves hold)."""
    file: str
    function: Callable
    options: tuple = ()
    suite_options: tuple = ()


@dataclass(frozen=True)
class FigureSpec:
    name: str                # how messages call it ("figure 2")
    families: tuple          # registry families it is drawn from (and so the nets it needs)
    core: tuple              # the families without which it has nothing of its own to show
    series: tuple            # summary series labels; the figure is drawn when the results have any of them
    plots: tuple             # Plot, one per file
    prefix: bool = False     # series match by prefix (preserve1, preserve2, ...)
    announce: bool = True    # say why it is skipped (the supplementary preserve figure is skipped quietly)

    def drawable(self, fam) -> bool:
        if self.prefix:
            return any(k.startswith(self.series) for k in fam)
        return any(k in fam for k in self.series)


# The paper's figures as data: a new figure is one more entry here plus its drawing function in draw.py.
FIGURE_2_FAMILIES = ("base", "selffer", "selffer-ft", "transfer", "transfer-ft")
FIGURES = {figure.name: figure for figure in (
    FigureSpec("figure 2", FIGURE_2_FAMILIES, FIGURE_2_FAMILIES, ("baseB", "BnB", "BnB+", "AnB", "AnB+"), (
        Plot("result_transfer", draw.figure2_points),
        Plot("result_transfer_lines", draw.figure2_lines, (("annotate", True),)),
        Plot("result_transfer_lines_notext", draw.figure2_lines, (("annotate", False),)))),
    FigureSpec("figure 3", ("natman-base", "natman-transfer", "nolearn", "netbase", "base", "transfer"),
               ("natman-base", "natman-transfer", "nolearn", "netbase"),
               ("natman:natural", "natman:man-made", "random"),
               (Plot("result_random_nm_combined", draw.figure3_panel, suite_options=("natman_names",)),)),
    FigureSpec("reduced", ("reduced",), ("reduced",), ("reduced",), (
        Plot("result_reduced", draw.reduced_figure, (("log", False),)),
        Plot("result_reduced_log", draw.reduced_figure, (("log", True),)))),
    FigureSpec("preserve", ("preserve",), ("preserve",), ("preserve",),
               (Plot("result_preserved", draw.preserve_figure),), prefix=True, announce=False),
)}
COMPARE_FILE = "compare_transfer_lines"  # the overlay of two results trees (--compare)


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


def needed(figure, suite, core=False) -> set:
    families = FIGURES[figure].core if core else FIGURES[figure].families
    return {n.name for n in registry.nets(suite) if n.family in families}


def missing_text(figure, present, suite, limit=8, expected=None) -> str:
    """One line naming the nets a figure would use that the results do not have (empty when none): whole splits
    that are absent by split, the rest by name. `expected`: only these net names count."""
    nets = [n for n in registry.nets(suite) if n.family in FIGURES[figure].families
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
    rest = registry.compress(n.name for n in missing if n.split not in absent)
    parts += rest.split(", ") if rest else []
    shown = "; ".join(parts[:limit]) + (f"; ... ({len(parts) - limit} more groups)" if len(parts) > limit else "")
    return f"Not in these results ({len(missing)} of {len(nets)} nets): {shown}"


def save(fig, out_base: Path) -> list:
    """The figure as out_base.pdf and out_base.png (written to temp files, then renamed)."""
    import matplotlib  # lazy for start-up, as draw
    written = []
    with matplotlib.rc_context({"pdf.fonttype": 42}):  # no Type 3 fonts in the PDF, as the original notebook did
        for ext in ("pdf", "png"):
            target = out_base.with_suffix(f".{ext}")
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format=ext, dpi=150 if ext == "png" else None)
            written.append(target)
    return written


def figure2(summary_dict, out_path, style="points", annotate=True, suite=None, expected=None,
            spread=False) -> list:
    """Figure 2 from {net: numbers}: style "points" (one marker per net) or "lines" (means, with the paper's
    numbered notes unless annotate=False). Works with any subset (e.g. one split); says what is missing: of the
    suite's Figure 2 nets, or of `expected` (net names) when a run meant only those (the demo). spread: the mean
    and range (min..max) across splits at each point, as the paper marks them."""
    fam, spec = summary.families(summary_dict), FIGURES["figure 2"]
    suite = suite or guess_suite(summary_dict)
    if not spec.drawable(fam):
        raise XferError("figure 2 has nothing to plot", fix="it needs test results of some of: " +
                        registry.compress(needed("figure 2", suite, core=True)))
    present = {name for name, row in summary_dict.items() if row.get("top1") is not None}
    note = missing_text("figure 2", present, suite, expected=expected)
    # the registered plots of figure 2: points, then lines with and without the numbered notes
    plot = spec.plots[0] if style == "points" else next(p for p in spec.plots[1:]
                                                         if dict(p.options)["annotate"] == annotate)
    fig = plot.function(fam, missing=note, spread=spread, **plot_options(plot, suite))
    return save(fig, Path(out_path).with_suffix(""))


def plot_all(results_dir, out_dir, compare=None, nets=None, log=None) -> list:
    """Every figure the results allow, into out_dir; returns the files written. Problems go to `log` (stderr)."""
    log = log or (lambda text: say(text, err=True))
    numbers, problems = summary.load(results_dir, nets)
    for line in summary.problem_lines(problems):
        log(line)
    suite = guess_suite(numbers)
    fam = summary.families(numbers)
    present = {name for name, row in numbers.items() if row["top1"] is not None}
    written = []
    for figure in FIGURES.values():
        written += draw_figure(figure, fam, present, suite, Path(out_dir), log)
    if compare:
        written += draw_compare(fam, results_dir, compare, Path(out_dir), log)
    return written


def plot_options(plot, suite) -> dict:
    """The drawing function's keyword options: the registered ones and the suite's attributes the plot names."""
    return dict(plot.options, **{name: getattr(registry.suite(suite), name) for name in plot.suite_options})


def draw_figure(figure, fam, present, suite, out, log, expected=None, files=None) -> list:
    """The files of one registered figure, or [] (saying why, unless the figure is quiet) when it has no data.
    expected: only these nets count as missing (a run that meant a part of the suite); files: other file names, one
    per plot, in place of the original repository's."""
    if not figure.drawable(fam):
        if figure.announce:
            log(f"{figure.name}: skipped, needs test results of some of: "
                f"{registry.compress(needed(figure.name, suite, core=True))}")
        return []
    note, written = missing_text(figure.name, present, suite, expected=expected), []
    for plot, file in zip(figure.plots, files or [plot.file for plot in figure.plots]):
        fig = plot.function(fam, missing=note, **plot_options(plot, suite))
        written += save(fig, out / file)
    return written


def draw_compare(fam, results_dir, compare, out, log) -> list:
    """Figure 2's lines of this tree over those of a second one (the paper's numbers, say)."""
    other, other_problems = summary.load(compare)
    for line in summary.problem_lines({f"{compare}: {k}": v for k, v in other_problems.items()}):
        log(line)
    other_fam = summary.families(other)
    if not any(k in other_fam for k in ("BnB", "AnB")):
        log(f"--compare {compare}: no selffer/transfer nets with test results there, nothing to overlay")
        return []
    fig = draw.compare_figure(fam, other_fam, tree_label(results_dir), tree_label(compare))
    return save(fig, out / COMPARE_FILE)


def tree_label(path) -> str:
    """A short name for a results tree in a legend: its last two folders (`paper/results`, `demo/results`)."""
    parts = Path(path).resolve().parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else str(path)
