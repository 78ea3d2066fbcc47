"""`xfer plot`: the paper's figures from a results tree (xfer/report/figures.py)."""
import sys

from ..logs import paper
from ..paths import PLOTS_DIR, RESULTS_DIR
from ..report import figures


def run_plot(args) -> int:
    results = paper.resolve_tree(args.results)
    compare = paper.resolve_tree(args.compare) if args.compare else None
    written = figures.plot_all(results, args.out, compare=compare, nets=args.nets or None)
    for path in written:
        print(path)
    if not written:
        print(f"no figure could be drawn from {results}", file=sys.stderr)
        return 1
    return 0


def register(sub):
    p = sub.add_parser("plot", help="the paper's figures (PDF and PNG) from a results tree's logs")
    p.add_argument("nets", nargs="*", metavar="NET_PATTERN", help="fnmatch patterns of net names (default all)")
    p.add_argument("--results", default=str(RESULTS_DIR),
                   help="the results tree (default: results/ of the kit; `paper`: the logs `xfer paper` fetched)")
    p.add_argument("--out", default=str(PLOTS_DIR), help="where the figures go (default: plots/)")
    p.add_argument("--compare", metavar="DIR2",
                   help="a second results tree to overlay on Figure 2 (`paper`: the logs `xfer paper` fetched)")
    p.set_defaults(func=run_plot)
