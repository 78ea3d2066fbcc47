"""The paper's figures drawn from per-net numbers (summary.load): Figure 2 (points; lines with and without the
numbered notes), the Figure 3-style panel (natman split, random filters, both relative to AnB), the reduced-volume
plot (linear and log), the preserve plot and the overlay of two results trees.

Each function takes `families` (summary.families of the top-1 numbers) and returns a matplotlib Figure, built
without pyplot so it works the same in scripts, tests and Jupyter. xfer/report/figures.py decides which figures can be
drawn, names what is missing and writes the files.
"""
import numpy as np
from matplotlib.figure import Figure

from ..nets import families

XLABEL = "Layer $n$ at which network is chopped and retrained"
YLABEL = "Top-1 accuracy (higher is better)"
# Each series' marker, colours, sideways shift and legend label: its registered entry (xfer/nets/paper_families.py).
FIGURE2 = ("baseB", "BnB", "BnB+", "AnB", "AnB+")
NATMAN = ("natman:natural", "natman:man-made")


def style(label) -> dict:
    return families.style(label)


# Figure 2 (bottom): which observation of the paper's Section 4.1 each line shows; the point of the line it labels
# (a layer n, or the line's minimum) and where the text goes from there (x in layers, y in fractions of the y span).
NOTES = {
    "BnB": ("2: Performance drops\ndue to fragile co-adaptation", "min", -2.9, -0.10),
    "BnB+": ("3: Fine-tuning recovers co-adapted interactions", 5, -0.4, 0.16),
    "AnB": ("4: Performance drops due to\nrepresentation specificity", 7, -3.2, -0.02),
    "AnB+": ("5: Transfer + fine-tuning improves generalization", 2, -1.6, 0.14),
}
TREATMENTS = FIGURE2[1:]  # BnB, BnB+, AnB, AnB+: the lines drawn against baseB


def new_figure(width=8.0, height=5.0):
    fig = Figure(figsize=(width, height))
    return fig


def note_missing(fig, text):
    """Say in the figure itself what it lacks, so a partial figure is never mistaken for a whole one."""
    if text:
        fig.text(0.01, 0.005, text, fontsize=7, color="0.35", ha="left", va="bottom", wrap=True)


def points(ax, stats, style, x_shift=0.0, size=8, label=None):
    for i, (x, s) in enumerate(sorted(stats.items())):
        xs = np.full(len(s["values"]), x + style["shift"] + x_shift)
        ax.plot(xs, s["values"], linestyle="none", marker=style["marker"], markersize=size,
                markerfacecolor=style["color"], markeredgecolor=style["edge"], label=label if i == 0 else None)


def mean_line(stats, start=None):
    """x and mean y of a treatment, starting from (0, start) when a base mean is given (as the paper's lines do)."""
    xs = sorted(stats)
    ys = [stats[x]["mean"] for x in xs]
    if start is not None and (not xs or xs[0] != 0):
        xs, ys = [0] + xs, [start] + ys
    return np.array(xs, float), np.array(ys, float)


def layer_axis(ax, top=7):
    ax.set_xlim(-0.5, top + 0.5)
    ax.set_xticks(range(0, top + 1))
    ax.set_xlabel(XLABEL)
    ax.spines["right"].set_visible(False)
    ax.spines["top"].set_visible(False)


def range_bars(ax, stats, style, x_shift=0.0):
    """The paper's spread markers: the mean (a tick) and the range min..max (a bar) of each x with more than one
    net, beside the points or on the line."""
    spread = [(x, s) for x, s in sorted(stats.items()) if s["count"] > 1]
    if not spread:
        return
    xs = np.array([x for x, _ in spread], float) + style["shift"] + x_shift
    means = np.array([s["mean"] for _, s in spread])
    low = means - np.array([s["min"] for _, s in spread])
    high = np.array([s["max"] for _, s in spread]) - means
    ax.errorbar(xs, means, yerr=np.vstack([low, high]), fmt="_", markersize=12, color=style["edge"],
                ecolor=style["edge"], elinewidth=1.2, capsize=3, zorder=1)


def figure2_points(fam, missing="", spread=False):
    """One marker per net; with spread, the mean and the range across splits of each treatment and n beside them."""
    fig = new_figure()
    ax = fig.add_subplot(111)
    for key in FIGURE2:
        if key in fam:
            points(ax, fam[key], style(key), label=style(key)["label"])
            if spread:
                range_bars(ax, fam[key], style(key), x_shift=0.04)
    layer_axis(ax)
    ax.set_ylabel(YLABEL)
    ax.legend(loc="lower left", numpoints=1, fontsize=9, frameon=False)
    note_missing(fig, missing)
    fig.tight_layout(rect=(0, 0.04 if missing else 0, 1, 1))
    return fig


def figure2_lines(fam, annotate=True, missing="", spread=False):
    """Lines through the means; with spread, a bar from the lowest to the highest net of each point."""
    fig = new_figure()
    ax = fig.add_subplot(111)
    base = fam.get("baseB", {}).get(0, {}).get("mean")
    if base is not None:
        ax.axhline(base, color="0.3", linestyle="--", linewidth=1.5, label="baseB")
    lines = {}
    for key in TREATMENTS:
        if key not in fam:
            continue
        xs, ys = mean_line(fam[key], base)
        look = style(key)
        ax.plot(xs, ys, color=look["edge"], linewidth=2.5, marker=look["marker"], markersize=6,
                markerfacecolor=look["color"], label=look["label"])
        lines[key] = xs, ys
    if spread:
        for key in FIGURE2:
            if key in fam:
                range_bars(ax, fam[key], dict(style(key), shift=style(key)["shift"] / 3))
    if annotate:
        make_room(ax)
        for key, (xs, ys) in lines.items():
            add_note(ax, key, xs, ys)
    layer_axis(ax)
    ax.set_ylabel(YLABEL)
    ax.legend(loc="lower left", fontsize=9, frameon=False)
    note_missing(fig, missing)
    fig.tight_layout(rect=(0, 0.04 if missing else 0, 1, 1))
    return fig


def add_note(ax, key, xs, ys):
    text, where, dx, dy = NOTES[key]
    inner = xs > 0
    if not inner.any():
        return
    i = int(np.flatnonzero(inner)[np.argmin(ys[inner])]) if where == "min" else int(np.argmin(np.abs(xs - where)))
    low, high = ax.get_ylim()
    ax.annotate(text, xy=(xs[i], ys[i]), xytext=(xs[i] + dx, ys[i] + dy * (high - low)), fontsize=8,
                color=style(key)["edge"], ha="left", va="center",
                bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1),
                arrowprops=dict(arrowstyle="-", color=style(key)["edge"], linewidth=0.8))


def make_room(ax, below=0.15, above=0.2):
    low, high = ax.get_ylim()
    ax.set_ylim(low - below * (high - low), high + above * (high - low))


def figure3_panel(fam, missing="", natman_names=("natural", "man-made")):
    """Top left: natman transfer by target task; top right: random untrained filters (nolearn) with netbase at 0;
    bottom: each relative to its own base, with the random A/B splits' AnB for reference. natman_names: what the
    suite's halfnatmanA and halfnatmanB hold, for the legend."""
    fig = new_figure(10, 8)
    left, right, bottom = fig.add_subplot(221), fig.add_subplot(222), fig.add_subplot(212)
    for key in NATMAN:
        if key in fam:
            xs, ys = mean_line(fam[key])
            left.plot(xs, ys, color=style(key)["color"], marker=style(key)["marker"], linewidth=2,
                      label=style(key)["label"].format(A=natman_names[0], B=natman_names[1]))
    left.set_ylabel(YLABEL)
    left.legend(fontsize=8, frameon=False, loc="lower left")
    if "random" in fam or "netbase" in fam:
        xs, ys = mean_line(fam.get("random", {}), fam.get("netbase", {}).get(0, {}).get("mean"))
        right.plot(xs, ys, color=style("random")["color"], marker="o", linewidth=2, label=style("random")["label"])
        right.legend(fontsize=8, frameon=False, loc="lower left")
    for ax in (left, right):
        layer_axis(ax)
    bottom.axhline(0, color="black", linewidth=1.5, label="reference")
    for label, series, base, color in relative_series(fam):
        xs, ys = mean_line(series)
        keep = xs > 0
        bottom.plot(np.r_[0, xs[keep]], np.r_[0, ys[keep] - base], color=color, linewidth=2, marker="o",
                    label=label)
    layer_axis(bottom)
    bottom.set_ylabel("Relative top-1 accuracy (higher is better)")
    bottom.legend(fontsize=8, frameon=False, loc="lower left")
    note_missing(fig, missing)
    fig.tight_layout(rect=(0, 0.04 if missing else 0, 1, 1))
    return fig


def relative_series(fam):
    """(label, series, base level, colour) of each treatment that has both its points and its base."""
    out = []
    base = fam.get("baseB", {}).get(0, {}).get("mean")
    if "AnB" in fam and base is not None:
        out.append(("mean AnB, random A/B splits", fam["AnB"], base, style("AnB")["edge"]))
    natman = {}
    for key in NATMAN:
        if key in fam and 0 in fam[key]:
            for x, s in fam[key].items():
                if x > 0:
                    natman.setdefault(x, []).append(s["mean"] - fam[key][0]["mean"])
    if natman:
        series = {x: {"mean": float(np.mean(v))} for x, v in natman.items()}
        out.append(("mean AnB, man-made/natural split", series, 0.0, style("natman:natural")["color"]))
    netbase = fam.get("netbase", {}).get(0, {}).get("mean")
    if "random" in fam and netbase is not None:
        out.append(("random features", fam["random"], netbase, style("random")["color"]))
    return out


def reduced_figure(fam, log=False, missing=""):
    fig = new_figure(7, 5)
    ax = fig.add_subplot(111)
    xs, ys = mean_line(fam["reduced"])
    ax.plot(xs, ys, color=style("reduced")["color"], marker="o", linewidth=2, label=style("reduced")["label"])
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("Training examples per class" + (" (log scale)" if log else ""))
    ax.set_ylabel(YLABEL)
    ax.spines["right"].set_visible(False)
    ax.spines["top"].set_visible(False)
    ax.legend(fontsize=9, frameon=False, loc="upper left")
    note_missing(fig, missing)
    fig.tight_layout(rect=(0, 0.04 if missing else 0, 1, 1))
    return fig


def preserve_figure(fam, missing=""):
    """Nets with layers 1..n frozen and `k` more layers copied and fine-tuned, against AnB and AnB+."""
    fig = new_figure()
    ax = fig.add_subplot(111)
    base = fam.get("baseB", {}).get(0, {}).get("mean")
    if base is not None:
        ax.axhline(base, color="0.3", linestyle="--", linewidth=1.5, label="baseB")
    for key in ("AnB", "AnB+"):
        if key in fam:
            xs, ys = mean_line(fam[key], base)
            ax.plot(xs, ys, color=style(key)["edge"], linewidth=1.5, alpha=0.6, label=style(key)["label"])
    keys = sorted(k for k in fam if k.startswith("preserve"))
    colors = [f"C{i}" for i in range(len(keys))]
    for key, color in zip(keys, colors):
        xs, ys = mean_line(fam[key])
        ax.plot(xs, ys, color=color, marker="o", linewidth=2,
                label=f"1..n frozen, {key[len('preserve'):]} more tuned")
    layer_axis(ax)
    ax.set_ylabel(YLABEL)
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    note_missing(fig, missing)
    fig.tight_layout(rect=(0, 0.04 if missing else 0, 1, 1))
    return fig


def compare_figure(fam_a, fam_b, label_a, label_b, missing=""):
    """Figure 2's lines of two results trees: absolute (left) and relative to each tree's own baseB (right)."""
    fig = new_figure(12, 5)
    absolute, relative = fig.add_subplot(121), fig.add_subplot(122)
    for fam, dash, name in ((fam_a, "-", label_a), (fam_b, "--", label_b)):
        base = fam.get("baseB", {}).get(0, {}).get("mean")
        for key in TREATMENTS:
            if key not in fam:
                continue
            xs, ys = mean_line(fam[key], base)
            look = style(key)
            kwargs = dict(color=look["edge"], linestyle=dash, linewidth=2, marker=look["marker"], markersize=5,
                          markerfacecolor=look["color"] if dash == "-" else "white")
            absolute.plot(xs, ys, label=f"{look['label']} ({name})", **kwargs)
            if base is not None:
                relative.plot(xs, ys - base, label=f"{look['label']} ({name})", **kwargs)
        if base is not None:
            absolute.axhline(base, color="0.3", linestyle=dash, linewidth=1)
    relative.axhline(0, color="0.3", linewidth=1)
    for ax in (absolute, relative):
        layer_axis(ax)
    absolute.set_ylabel(YLABEL)
    relative.set_ylabel("Top-1 accuracy relative to baseB")
    absolute.set_title(f"solid: {label_a}   dashed: {label_b}", fontsize=9)
    relative.set_title("each relative to its own baseB", fontsize=9)
    absolute.legend(fontsize=7, frameon=False, loc="lower left", ncol=2)
    note_missing(fig, missing)
    fig.tight_layout(rect=(0, 0.04 if missing else 0, 1, 1))
    return fig
