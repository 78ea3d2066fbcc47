"""`xfer doctor`: what Caffe the kit runs, how it was built, and what is missing (with the fix)."""
import sys

from ..doctor import collect


def run(args) -> int:
    rows, problems = collect()
    width = max(len(k) for k, _ in rows) if rows else 0
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for problem in problems:
        print(f"MISSING: {problem}", file=sys.stderr)
    return 1 if problems else 0


def register(sub):
    p = sub.add_parser("doctor", help="show the Caffe build the kit uses; exit non-zero with the fix if broken")
    p.set_defaults(func=run)
