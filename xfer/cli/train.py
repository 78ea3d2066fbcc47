"""`xfer train NET`: one net with the real `caffe train` (xfer/run/train.py)."""
import sys

from ..nets import layout, registry
from ..run import train
from ..run.netdir import results_root, tree_suite


def run_train(args) -> int:
    suite = tree_suite(args.results, args.suite)
    net = registry.get(args.net, suite)
    try:
        return train.train(net, results=results_root(args.results, suite), cpu=args.cpu, gpu=args.gpu,
                           quiet=args.quiet, force=args.force, retries=args.retries,
                           lock_wait=args.lock_wait)
    except train.StopTraining as stop:
        where = f"snapshot at iteration {stop.stopped_at}" if stop.stopped_at is not None else "no snapshot yet"
        print(f"xfer train: {net.name} stopped by {stop} ({where}); the same command resumes it", file=sys.stderr)
        return stop.exit_code()


def register(sub):
    p = sub.add_parser("train", help="train one net with the real `caffe train` (resumes; one run per net at a time)")
    p.add_argument("net", help="net name from the registry")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--gpu", type=int, metavar="N", help="train on GPU N")
    mode.add_argument("--cpu", action="store_true", help="train on the CPU (solver_mode CPU)")
    p.add_argument("--suite", choices=registry.suite_names(),
                   help="the registry's suite (default: the one --results was rendered for, else paper)")
    p.add_argument("--results", help="the results tree (default: results/ of the kit)")
    p.add_argument("--quiet", action="store_true", help="print only errors and the verify report when it fails")
    p.add_argument("--force", action="store_true",
                   help="restart a net whose snapshots came from an older version of its base (the old snapshots "
                        "and logs are moved into superseded_<time>/)")
    p.add_argument("--retries", type=int, default=0, metavar="N",
                   help="after a failure that may pass (Caffe killed by a signal, a CUDA error) exit 75 instead of "
                        "failing, while the net has had fewer than N such tries (counted in "
                        f"{layout.RETRIES}); the caller starts it again and it resumes")
    p.add_argument("--lock-wait", type=float, default=1.0, metavar="SECONDS",
                   help="wait this long for the lock of another run of the net to go (default 1; the SLURM job "
                        "script waits 300 s: a requeued job's earlier run may still be stopping)")
    p.set_defaults(func=run_train)

