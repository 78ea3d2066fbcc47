"""`xfer demo`: the whole study in miniature on Fashion-MNIST, on a CPU (xfer/studies/demo.py; --full: demo_full.py)."""
import os

from ..studies import demo
from ..paths import paper_results


def run_demo(args) -> int:
    seeds = demo.choose_seeds(args.seeds, args.quick, args.full)
    return demo.run_demo(args.out, seeds, args.quick, args.slots, args.force, full=args.full, paper=args.paper)


def register(sub) -> None:
    p = sub.add_parser("demo", help="the whole study in miniature on Fashion-MNIST, on a CPU (re-runnable)")
    p.add_argument("--out", help=f"where everything goes (default: {demo.default_out()})")
    p.add_argument("--seeds", default=None, help="random-half seeds, e.g. 0 or 0,1,2,3 (default 0)")
    p.add_argument("--quick", action="store_true", help=f"only n = {','.join(map(str, demo.QUICK_N))}: a smoke run")
    p.add_argument("--full", action="store_true",
                   help="every figure of the paper: seeds 0..3 with the spread across them, Figure 3, the reduced "
                        f"figure, and a table beside the paper's numbers "
                        f"({len(demo.demo_names(demo.demo_full.FULL_SEEDS, full=True))} nets)")
    p.add_argument("--paper", metavar="DIR",
                   help="the paper's results tree (its logs) that --full compares with "
                        f"(default: {paper_results()}; $XFER_PAPER_DIR/results when set)")
    p.add_argument("--slots", type=int, default=max(1, os.cpu_count() or 1),
                   help="nets trained at once (default: one per CPU core)")
    p.add_argument("--force", action="store_true",
                   help="retrain, from scratch, the nets whose recipe changed since they were rendered")
    p.set_defaults(func=run_demo)
