"""`xfer run` (the graph of nets through a backend: xfer/run/runner.py) and `xfer status` (xfer/run/status.py)."""
import json

from ..nets import registry
from ..run import status
from ..run import backends, failures, runner
from ..run.netdir import hand_trainings, results_root, tree_suite


SUITE_HELP = "the registry's suite (default: the one --results was rendered for, else paper)"


def run_run(args) -> int:
    args.suite = tree_suite(args.results, args.suite)
    results = results_root(args.results, args.suite)
    options = backends.options(args.scheduler, args, gpus=args.gpus, cpu=args.cpu, dry_run=args.dry_run,
                               retries=args.retries)
    return runner.run_graph(args.patterns, args.suite, results, args.scheduler, options)


def run_status(args) -> int:
    args.suite = tree_suite(args.results, args.suite)
    results = results_root(args.results, args.suite)
    queues, by_hand = backends.queues(), hand_trainings()
    rows = [status.net_state(net, results, queues, by_hand) for net in registry.match(args.patterns, suite=args.suite)]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print("\n".join(status.table_lines(rows)))
        print(status.state_counts(rows))
        for line in status.reason_lines(rows):
            print(line)
    return 0


def register(sub):
    p = sub.add_parser("run", help="train the graph of nets (bases first) locally or on SLURM; re-runnable")
    p.add_argument("patterns", nargs="*", metavar="NET_PATTERN", help="fnmatch patterns of net names (default all)")
    p.add_argument("--suite", choices=registry.suite_names(), help=SUITE_HELP)
    p.add_argument("--results", help="the results tree (default: results/ of the kit)")
    p.add_argument("--scheduler", "--backend", dest="scheduler", default="local", choices=backends.names(),
                   help="where the nets train: %(choices)s (--backend: the old spelling, still taken; "
                        "`render` and `db` keep --backend for Caffe's database format)")
    p.add_argument("--gpus", help="GPUs to use, one net per GPU, e.g. 0,1 (slurm: ask each job for a GPU)")
    p.add_argument("--cpu", action="store_true", help="train on the CPU even when Caffe has CUDA")
    p.add_argument("--dry-run", action="store_true", help="print the plan (and the sbatch commands and scripts)")
    p.add_argument("--retries", type=int, default=failures.DEFAULT_RETRIES, metavar="N",
                   help="per net: start it again from its newest whole snapshot after a failure that may pass (Caffe "
                        "killed by a signal, a CUDA error, a lost node), at most N times (default %(default)s)")
    backends.add_arguments(p)  # each backend's own flags (--slots, --partition, --time, ...), in its own group
    p.set_defaults(func=run_run)

    p = sub.add_parser("status", help="one table of every net: state, iteration, accuracy, ETA, SLURM job")
    p.add_argument("patterns", nargs="*", metavar="NET_PATTERN", help="fnmatch patterns of net names (default all)")
    p.add_argument("--suite", choices=registry.suite_names(), help=SUITE_HELP)
    p.add_argument("--results", help="the results tree (default: results/ of the kit)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=run_status)
