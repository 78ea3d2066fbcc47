"""`xfer rehearse`: the paper suite at full size on an ImageNet-shaped tree, in minutes (xfer/studies/rehearse.py)."""
from ..studies import rehearse
from ..errors import XferError
from ..nets import overrides
from ..run import backends


def nets_of(text) -> tuple:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise XferError(f"--nets wants paper net names like half0A,transfer0A0B_1_3 (got {text!r})")
    return names


def run_rehearse(args) -> int:
    if args.gpu is not None and args.gpus:
        raise XferError("--gpu and --gpus exclude each other")
    schedule = dict(rehearse.SCHEDULE, **overrides.parse_assignments(args.set))
    run_args = ("--partition", args.partition) if args.partition else ()
    reh = rehearse.Rehearsal(out=args.out or rehearse.default_out(), nets=nets_of(args.nets), schedule=schedule,
                             backend=args.scheduler, gpus=args.gpus or (None if args.gpu is None else str(args.gpu)),
                             slots=args.slots, run_args=run_args)
    return rehearse.rehearse(reh)


def register(sub) -> None:
    p = sub.add_parser("rehearse", help="the paper's pipeline at full size on an ImageNet-shaped tree, in minutes: "
                                        "the step before a real run")
    p.add_argument("--out", help=f"where everything goes (default: {rehearse.default_out()})")
    p.add_argument("--scheduler", "--backend", dest="scheduler", default="local", choices=backends.names(),
                   help="where `xfer run` trains the nets (--backend: the old spelling, still taken)")
    p.add_argument("--gpu", type=int, metavar="N", help="train on GPU N (default: the CPU)")
    p.add_argument("--gpus", help="train on these GPUs, e.g. 0,1 (one net per GPU; slurm: a GPU per job)")
    p.add_argument("--slots", type=int, default=1, help="nets trained at once on the CPU (local backend)")
    p.add_argument("--partition", help="slurm partition")
    p.add_argument("--nets", default=",".join(rehearse.NETS),
                   help="comma-separated paper nets (bases are added; default: one of every kind)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change the rehearsal's short schedule (as `xfer render --set`; default: "
                        f"{overrides.describe(rehearse.SCHEDULE)})")
    p.set_defaults(func=run_rehearse)
