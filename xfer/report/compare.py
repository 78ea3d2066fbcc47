"""Two results trees side by side, family by family: the miniature's numbers beside the paper's.

The mini nets learn 10-class Fashion-MNIST, the paper's 500- or 1000-class ImageNet, so their accuracies are not
comparable as they stand. What the paper's findings are about is the shape of each curve against its own base
(AnB - baseB falling with n, BnB dipping in the middle, AnB+ above the base, ...): each row therefore gives, for
both trees, the mean [min..max] xcount across the random splits and the mean's difference to that tree's base.
"""
import csv
import io

from ..nets import families
from . import summary



def references() -> dict:
    """{series: (series, x) of its base}: every registered series the comparison table has a row for, in order.
    "whole": the reduced-volume level that is the whole training set (the last of a suite's levels)."""
    return {s.label: s.reference for s in families.all_series() if s.reference is not None}


CSV_FIELDS = ("series", "x", "mini_mean", "mini_min", "mini_max", "mini_count", "mini_minus_base",
              "paper_mean", "paper_min", "paper_max", "paper_count", "paper_minus_base")


def by_whole(fam, whole_level) -> dict:
    """The families with the reduced level that is the whole training set renamed "whole", so two suites whose
    whole sets differ in size (Fashion-MNIST's 6000 per class, ImageNet's 1300) share that row."""
    out = dict(fam)
    if "reduced" in fam:
        out["reduced"] = {("whole" if x == whole_level else x): s for x, s in fam["reduced"].items()}
    return out


def difference(fam, label, x):
    """The mean of a point minus the mean of its base (None where either is missing)."""
    ref_label, ref_x = families.series(label).reference
    point, base = fam.get(label, {}).get(x), fam.get(ref_label, {}).get(ref_x)
    if point is None or base is None:
        return None
    return point["mean"] - base["mean"]


def sort_key(x):
    return (1, 0) if x == "whole" else (0, x)


def rows(mini_fam, paper_fam, mini_whole, paper_whole) -> list:
    """One row per series and x that either tree has: {series, x, mini, mini_diff, paper, paper_diff}, the stats
    being summary.families' {mean, min, max, count, ...} or None."""
    mini, paper = by_whole(mini_fam, mini_whole), by_whole(paper_fam, paper_whole)
    out = []
    for label in references():
        xs = sorted(set(mini.get(label, {})) | set(paper.get(label, {})), key=sort_key)
        for x in xs:
            out.append({"series": label, "x": x, "mini": mini.get(label, {}).get(x),
                        "mini_diff": difference(mini, label, x), "paper": paper.get(label, {}).get(x),
                        "paper_diff": difference(paper, label, x)})
    return out


def cell(stats) -> str:
    if stats is None:
        return "-"
    return f"{stats['mean']:.4f} [{stats['min']:.4f}..{stats['max']:.4f}] x{stats['count']}"


def signed(value) -> str:
    return "-" if value is None else f"{value:+.4f}"


def to_text(table_rows, mini_label="mini", paper_label="paper") -> str:
    """The rows as a text table, the columns aligned."""
    lines = [("series", "n", f"{mini_label}: mean [min..max] xnets", f"{mini_label} - base",
              f"{paper_label}: mean [min..max] xnets", f"{paper_label} - base")]
    for row in table_rows:
        lines.append((families.series(row["series"]).text, str(row["x"]), cell(row["mini"]), signed(row["mini_diff"]),
                      cell(row["paper"]), signed(row["paper_diff"])))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
                     .rstrip() for line in lines)


def to_csv(table_rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in table_rows:
        values = [row["series"], row["x"]]
        for tree in ("mini", "paper"):
            stats = row[tree] or {}
            values += [stats.get("mean", ""), stats.get("min", ""), stats.get("max", ""), stats.get("count", ""),
                       "" if row[f"{tree}_diff"] is None else row[f"{tree}_diff"]]
        writer.writerow(values)
    return out.getvalue()


def compare_trees(mini_numbers, paper_numbers, mini_whole, paper_whole) -> list:
    """The rows for two {net: numbers} (summary.load) of top-1."""
    return rows(summary.families(mini_numbers), summary.families(paper_numbers), mini_whole, paper_whole)
