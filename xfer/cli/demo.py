"""`xfer demo`: the whole study in miniature on Fashion-MNIST, on a CPU (xfer/demo.py)."""
import os

from .. import demo


def run_demo(args) -> int:
    return demo.run_demo(args.out, demo.parse_seeds(args.seeds), args.quick, args.slots, args.force)


def register(sub) -> None:
    p = sub.add_parser("demo", help="the whole study in miniature on Fashion-MNIST, on a CPU (re-runnable)")
    p.add_argument("--out", help=f"where everything goes (default: {demo.default_out()})")
    p.add_argument("--seeds", default="0", help="random-half seeds, e.g. 0 or 0,1,2,3 (default 0)")
    p.add_argument("--quick", action="store_true", help=f"only n = {','.join(map(str, demo.QUICK_N))}: a smoke run")
    p.add_argument("--slots", type=int, default=max(1, os.cpu_count() or 1),
                   help="nets trained at once (default: one per CPU core)")
    p.add_argument("--force", action="store_true",
                   help="retrain, from scratch, the nets whose recipe changed since they were rendered")
    p.set_defaults(func=run_demo)
