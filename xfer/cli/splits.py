"""`xfer splits`: the whole lists -> the paper's derivative lists (xfer/data/splits.py)."""
from ..data import splits
from ..paths import DATA_DIR


def register(subparsers) -> None:
    p = subparsers.add_parser("splits", help="whole lists -> the paper's halves, natman halves and reduced lists",
                              description=splits.__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(DATA_DIR), help="holds whole_train/, whole_valid/ (default: %(default)s)")
    p.add_argument("--synsets", metavar="FILE", help="class ids for the natural/man-made split "
                                                     "(default: <data-dir>/synsets.txt)")
    p.add_argument("--no-natman", action="store_true", help="skip the natural/man-made halves (non-WordNet classes)")
    p.add_argument("--verify", action="store_true", help="compare every list with the paper's md5 sums; "
                                                         "exit 1 naming each mismatch")
    p.add_argument("--force", action="store_true", help="overwrite lists whose content differs")
    p.set_defaults(func=run)


def run(args) -> int:
    written = splits.make_all(args.data_dir, synsets=args.synsets, natman=not args.no_natman, force=args.force)
    print(f"{len(written)} list files written in {args.data_dir}" + ("" if written else " (all up to date)"))
    if not args.verify:
        return 0
    checked, mismatches = splits.verified_files(args.data_dir), splits.verify(args.data_dir)
    for message in mismatches:
        print(f"MISMATCH {message}")
    print(f"{len(checked) - len(mismatches)} of {len(checked)} lists equal the paper's (md5)")
    if mismatches:
        print(f"  fix: {splits.VERIFY_FIX}")
    return 1 if mismatches else 0
