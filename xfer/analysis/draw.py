"""The figures of the layer-by-layer analysis, built without pyplot (scripts, tests and Jupyter alike):
a heatmap of linear CKA against a reference net, and probe accuracy per layer beside the trained AnB / AnB+ curves
(in Figure 2's markers)."""
import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..report import draw as report_draw

PROBE_STYLE = dict(color="#2c7a2c", marker="s", label="linear probe on base A's frozen layer $n$")


def cka_heatmap(result, labels=None):
    """Rows: the compared nets; columns: the layers; colour and number: linear CKA with the reference."""
    names, layers = list(result["cka"]), result["layers"]
    values = np.array([[result["cka"][name][layer] for layer in layers] for name in names], dtype=float)
    fig = Figure(figsize=(1.2 + 0.62 * len(layers) + 2.6, 1.4 + 0.36 * len(names)))
    ax = fig.add_subplot(1, 1, 1)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.8")  # grey: a dead layer (no variance), no CKA
    image = ax.imshow(np.ma.masked_invalid(values), vmin=0.0, vmax=1.0, cmap=cmap, aspect="auto")
    for (row, col), value in np.ndenumerate(values):
        text = "–" if np.isnan(value) else f"{value:.2f}"
        ax.text(col, row, text, ha="center", va="center", fontsize=7, color="black" if value > 0.6 else "white")
    ax.set_xticks(range(len(layers)), layers)
    ax.set_yticks(range(len(names)), [(labels or {}).get(name, name) for name in names], fontsize=8)
    ax.set_title(f"Linear CKA with {result['reference']}, layer by layer ({result['images']} probe images)",
                 fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="linear CKA")
    fig.tight_layout()
    return fig


def probe_figure(result, families=None):
    """Probe accuracy per layer (0: pixels) with chance, and where present the trained baseB, AnB, AnB+."""
    families = families or {}
    fig = report_draw.new_figure(8.0, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    xs = np.arange(len(result["layers"]))
    ax.plot(xs, [result["accuracy"][layer] for layer in result["layers"]], color=PROBE_STYLE["color"],
            marker=PROBE_STYLE["marker"], label=PROBE_STYLE["label"])
    ax.axhline(result["chance"], color="0.6", linestyle=":", label="chance (commonest class)")
    base = families.get("baseB", {}).get(0)
    if base:
        ax.axhline(base["mean"], color="black", linestyle="--", linewidth=0.8, label="baseB (trained)")
    for series in ("AnB", "AnB+"):
        stats = {x: s for x, s in families.get(series, {}).items() if x > 0}
        if stats:
            style = report_draw.style(series)
            report_draw.points(ax, stats, style, size=6, label=style["label"] + " (trained)")
            line_x, line_y = report_draw.mean_line(stats)
            ax.plot(line_x, line_y, color=style["color"], linewidth=1)
    report_draw.layer_axis(ax, top=len(xs) - 1)
    ax.set_xticks(xs, [f"{x}\n{layer}" for x, layer in zip(xs, result["layers"])], fontsize=8)
    ax.set_ylabel(report_draw.YLABEL)
    ax.set_title(f"Linear probe on {result['base']} ({result['train_images']} train / {result['valid_images']} "
                 "valid images) and the trained transfers", fontsize=9)
    ax.legend(fontsize=7, loc="best")
    if not families.get("AnB") and not families.get("AnB+"):
        report_draw.note_missing(fig, "no trained AnB / AnB+ nets with logs in this results tree")
    return fig
