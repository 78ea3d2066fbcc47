"""`xfer db`: lists -> databases and mean files, or the shared image tree (xfer/data/databases.py)."""
from ..data import databases, dbformat, writers
from ..paths import DATA_DIR


def register(subparsers) -> None:
    p = subparsers.add_parser("db", help="lists -> LMDB/LevelDB databases and mean files (or a shared image tree)",
                              description=databases.__doc__.split("\n\n")[0])
    p.add_argument("datasets", nargs="*", metavar="DATASET", help="dataset names or patterns (default: all)")
    p.add_argument("--data-dir", default=str(DATA_DIR), help="holds <dataset>/files.txt (default: %(default)s)")
    p.add_argument("--images", metavar="DIR", help="image folder with train/ and val/ (default: the folders "
                                                   "recorded by `xfer imagenet-lists`)")
    p.add_argument("--backend", choices=dbformat.BACKENDS, default="lmdb")
    p.add_argument("--resize", type=int, default=256, help="resize to N x N as convert_imageset does; 0 keeps sizes")
    p.add_argument("--gray", action="store_true", help="read images as one-channel grayscale")
    p.add_argument("--jobs", type=int, default=None, help="convert_imageset processes at once (default: all cores)")
    p.add_argument("--writer", choices=databases.WRITERS, default="parallel",
                   help="parallel: same records as convert_imageset, on all cores; caffe: Caffe's tools as they are")
    p.add_argument("--encoded", action="store_true",
                   help=f"records hold each resized image as JPEG (quality {writers.JPEG_QUALITY}, convert_imageset "
                        "--encoded): ~6x less disk; Caffe's Data layer decodes them")
    p.add_argument("--shared-images", action="store_true",
                   help="one resized image tree for all datasets + image lists for Caffe's ImageData layer")
    p.add_argument("--skip-bad", action="store_true", help="leave out missing/unreadable images (and count them)")
    p.add_argument("--force", action="store_true", help="rebuild finished databases built from another list")
    p.set_defaults(func=run)


def run(args) -> int:
    records = databases.build_databases(args.data_dir, args.images, args.datasets, args.backend, args.resize,
                                        args.gray, args.jobs, args.writer, args.skip_bad, args.force,
                                        args.shared_images, encoded=args.encoded)
    skipped = sum(r.get("bad", 0) for r in records)
    print(f"xfer db: {len(records)} dataset(s) ready in {args.data_dir}"
          + (f"; {skipped} bad image(s) left out (see bad_images.txt)" if skipped else ""))
    return 0
