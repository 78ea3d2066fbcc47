"""`xfer summary`: per-net top-1 and losses from a results tree's logs (xfer/report/summary.py)."""
import json
import sys

from ..logs import paper
from ..logs.parser import NO_LOGS
from ..paths import RESULTS_DIR
from ..report import summary


def no_logs_line(results, problems) -> str:
    """The one line for a tree without a single log: how many nets wait, and what to run next."""
    return (f"no training logs yet in {results} ({len(problems)} nets): train them with `xfer run`, or see the "
            "paper's own numbers: `xfer paper`, then `xfer summary --paper`")


def run_summary(args) -> int:
    results = paper.fetched_results() if args.paper else paper.resolve_tree(args.results)
    numbers, problems = summary.load(results, args.nets or None, cache=not args.no_cache)
    if not numbers and all(p == [NO_LOGS] for p in problems.values()):
        print(no_logs_line(results, problems), file=sys.stderr if args.format != "table" else sys.stdout)
        if args.format == "json":
            print("{}")
        return 0
    if args.format == "json":
        print(json.dumps(numbers, indent=1, sort_keys=True))
    elif args.format == "csv":
        sys.stdout.write(summary.to_csv(numbers))
    else:
        print(summary.table(numbers) if numbers else f"no net in {results} has usable training logs")
        if numbers and args.families:
            print()
            print(summary.family_table(numbers))
    for line in summary.problem_lines(problems):
        print(line, file=sys.stderr)
    return 0


def register(sub):
    p = sub.add_parser("summary", help="per-net top-1 / losses from the training logs (the paper's measure)")
    p.add_argument("nets", nargs="*", metavar="NET_PATTERN", help="fnmatch patterns of net names (default all)")
    p.add_argument("--results", default=str(RESULTS_DIR),
                   help="the results tree (default: results/ of the kit; `paper`: the logs `xfer paper` fetched)")
    p.add_argument("--paper", action="store_true", help="the original study's logs, as fetched by `xfer paper`")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument("--families", action="store_true", help="also print the family means by layer n (table format)")
    p.add_argument("--no-cache", action="store_true", help="parse every log again (ignore the parse cache)")
    p.set_defaults(func=run_summary)
