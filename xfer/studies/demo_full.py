"""`xfer demo --full`: every figure of the paper in miniature, on top of what xfer/studies/demo.py does.

Beyond the quick demo's nets (Figure 2 for one seed), --full trains, all asked of the registry by family:
  Figure 2   the paper's 4 random splits (seeds 0..3): base A and B, BnB, BnB+, AnB, AnB+ for n = 1..7 per seed
  Figure 3   the natman analogue (halfnatmanA/B and the transfers both ways) and random frozen features
             (nolearn_1_n against netbase)
  reduced    the base net on reduced training sets (reduced-NNNN), drawn on linear and log axes
and reports Figure 2 with the paper's spread markers (mean and range across the splits), Figure 3, the reduced
figures and a table of the miniature's numbers beside the paper's (when the paper's logs are at hand).
"""
from pathlib import Path

from ..nets import registry
from ..paths import paper_results, write_text_atomic
from ..progress import say
from ..report import compare, figures, summary

SUITE = "mini"
FULL_SEEDS = (0, 1, 2, 3)  # the paper's four random splits
# The registry families of Figure 3 and of the reduced-volume figure (Figure 2's come from demo.net_names)
EXTRA_FAMILIES = ("natman-base", "natman-transfer", "netbase", "nolearn", "reduced")
# The demo's file names for the registered figures (xfer plot uses the original repository's), one per plot
FIGURE_FILES = {"figure 3": ("figure3",), "reduced": ("reduced", "reduced_log")}


def extra_names() -> list:
    """The nets of Figure 3 and of the reduced-volume figure, in registry order (bases first)."""
    return [net.name for net in registry.nets(SUITE) if net.family in EXTRA_FAMILIES]


def missing_notes(shown, names) -> dict:
    """{figure: the line naming the nets it lacks} for Figure 2, 3 and reduced, of the nets the demo meant to
    train (`names`); empty lines are left out."""
    present = {name for name, row in shown.items() if row.get("top1") is not None}
    notes = {name: figures.missing_text(name, present, SUITE, expected=set(names))
             for name in ("figure 2",) + tuple(FIGURE_FILES)}
    return {name: note for name, note in notes.items() if note}


def draw_more_figures(shown, out, names) -> list:
    """Figure 3 and the reduced figures (linear and log) into out/figures; the paths written."""
    fam = summary.families(shown)
    present = {name for name, row in shown.items() if row.get("top1") is not None}
    written = []
    for name, files in FIGURE_FILES.items():
        written += figures.draw_figure(figures.FIGURES[name], fam, present, SUITE, Path(out) / "figures", say,
                                       expected=set(names), files=files)
    return [str(path) for path in written]


def paper_tree(paper=None) -> "Path | None":
    """The paper's results tree: `paper` itself or its results/ folder (a checkout of the original repository),
    default paths.paper_results(); None when there is none."""
    root = Path(paper) if paper else paper_results()
    for candidate in (root, root / "results"):
        if candidate.is_dir() and any(registry.describe(p.name) for p in candidate.iterdir() if p.is_dir()):
            return candidate
    return None


def compare_with_paper(shown, out, paper=None) -> list:
    """comparison.txt and comparison.csv in out: the miniature beside the paper, family by family; [] (saying so
    in one line) when the paper's results are not there."""
    tree = paper_tree(paper)
    if tree is None:
        say(f"comparison with the paper: skipped, no results tree of the paper's nets at "
            f"{Path(paper) if paper else paper_results()} (fetch the paper's logs with `xfer paper`, or name a "
            "tree with --paper DIR)")
        return []
    paper_numbers, _ = summary.load(tree)  # the paper's tree has known gaps (e.g. 22 fine-tuned nets): not ours
    table_rows = compare.compare_trees(shown, paper_numbers, registry.suite(SUITE).whole_level,
                                       registry.suite("paper").whole_level)
    text = "\n".join([
        f"The miniature (mini suite, Fashion-MNIST, 10 classes) beside the paper ({tree}: ImageNet, 1000 classes).",
        "Top-1 per series and n (images per class for reduced): mean [min..max] xnets across the random splits, and",
        "the mean minus the tree's own base: baseB for BnB, BnB+, AnB, AnB+; the natman base of the same target",
        "task at n = 0; netbase for random (nolearn); the whole training set for reduced. Absolute accuracies",
        "differ by task; the paper's findings are in the differences. The paper's baseB pools both halves of its",
        "splits (its transfers ran both ways); the miniature's is half B of each seed (its transfers all target B).",
        "", compare.to_text(table_rows), ""])
    paths = [Path(out) / "comparison.txt", Path(out) / "comparison.csv"]
    write_text_atomic(paths[0], text)
    write_text_atomic(paths[1], compare.to_csv(table_rows))
    say(text)
    return [str(path) for path in paths]


def report_full(shown, out, names, paper=None) -> dict:
    """What --full adds to the demo's report: {figures, comparison (paths), missing (figure -> note)}. shown: the
    numbers the figures take; names: the nets of those the demo meant to train."""
    say("\n== report (--full): Figure 3, the reduced-volume figures, the table beside the paper's numbers")
    written = draw_more_figures(shown, out, names)
    missing = missing_notes(shown, names)
    for name, note in missing.items():
        say(f"   {name}: {note}")
    return {"figures": written, "comparison": compare_with_paper(shown, out, paper), "missing": missing}
