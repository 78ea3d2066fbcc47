"""`xfer images`: a miniature's images from Debian packages, its lists, splits and databases (xfer/studies/tasks.py)."""
from pathlib import Path

from ..studies import pipeline
from ..errors import XferError
from ..nets import registry
from ..paths import cache_dir

SUITES = [name for name in registry.suite_names() if registry.suite(name).task]


def per_class(text):
    try:
        train, val = (int(part) for part in text.split(","))
    except ValueError:
        raise XferError(f"--per-class wants TRAIN,VAL image counts like 250,50 (got {text!r})") from None
    if train < 1 or val < 1:
        raise XferError(f"--per-class {text}: both counts must be 1 or more")
    return train, val


def run(args) -> int:
    out = Path(args.out) if args.out else cache_dir() / registry.suite(args.suite).work / "data-tree"
    data = pipeline.make_data(out, args.suite, pipeline.parse_seeds(args.seeds),
                              per_class(args.per_class) if args.per_class else None, db=not args.no_db)
    print(f"data dir: {data} (render with: xfer render --suite {args.suite} --data-dir {data})")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("images", help="a miniature's image tree from Debian packages, with its lists, "
                                             "splits and databases (glyphs: 200 letters of 10 scripts)")
    p.add_argument("--suite", choices=SUITES, default="glyphs", help="whose images (default: %(default)s)")
    p.add_argument("--out", help="where images/ and data/ go (default: <cache>/<suite's folder>/data-tree)")
    p.add_argument("--seeds", default="0,1,2,3", help="random-half seeds whose splits are made (default %(default)s)")
    p.add_argument("--per-class", metavar="TRAIN,VAL",
                   help="glyphs only: images per class (default 250,50; a small tree for a smoke run)")
    p.add_argument("--no-db", action="store_true", help="lists and splits only, no LMDBs")
    p.set_defaults(func=run)
