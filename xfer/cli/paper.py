"""`xfer paper`: the original study's training logs, fetched and checked into the kit's cache (xfer/logs/paper.py)."""
from ..logs import paper
from ..paths import paper_dir


def run_paper(args) -> int:
    paper.fetch(args.source, force=args.force)
    return 0


def register(sub):
    p = sub.add_parser("paper", help="fetch the original study's training logs (354 logs, checked) into the cache")
    p.add_argument("--from", dest="source", metavar="SOURCE",
                   help=f"a git URL, a local checkout (or its results/) or a tarball of the original repository "
                        f"(default: {paper.DEFAULT_SOURCE}, cloned shallow)")
    p.add_argument("--force", action="store_true", help=f"fetch again over a complete fetch in {paper_dir()}")
    p.set_defaults(func=run_paper)
