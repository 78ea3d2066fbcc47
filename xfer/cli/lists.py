"""`xfer imagenet-lists`: image folders -> the whole lists (xfer/data/lists.py)."""
from ..data import lists
from ..paths import DATA_DIR


def register(subparsers) -> None:
    p = subparsers.add_parser("imagenet-lists", aliases=["lists"],
                              help="image folders (ILSVRC12 or any class/xxx.jpg tree) -> whole_train/valid lists",
                              description=lists.__doc__.split("\n\n")[0])
    p.add_argument("--train", metavar="DIR", help="training images: <class>/xxx.JPEG sub-folders")
    p.add_argument("--val", metavar="DIR", help="validation images: flat (with --val-labels) or <class>/ sub-folders")
    p.add_argument("--val-labels", metavar="FILE",
                   help="labels of a flat val folder: Caffe's val.txt, `IMAGE WNID` lines, LOC_val_solution.csv "
                        "or the devkit's ILSVRC2012_validation_ground_truth.txt (with meta.mat beside it)")
    p.add_argument("--train-list", metavar="FILE", help="Caffe's train.txt instead of scanning --train")
    p.add_argument("--val-list", metavar="FILE", help="Caffe's val.txt (with --train-list)")
    p.add_argument("--synsets", metavar="FILE", help="Caffe's synsets.txt (with --train-list)")
    p.add_argument("--data-dir", default=str(DATA_DIR), help="where the lists go (default: %(default)s)")
    p.add_argument("--no-check", action="store_true", help="with --train-list: do not check that each image exists")
    p.add_argument("--force", action="store_true", help="overwrite lists that differ from what would be written")
    p.set_defaults(func=run)


def run(args) -> int:
    summary = lists.write_imagenet_lists(args.data_dir, args.train, args.val, args.val_labels, args.train_list,
                                   args.val_list, args.synsets, force=args.force, check_files=not args.no_check)
    print(f"{len(summary['classes'])} classes, {summary['train']} training and {summary['valid']} validation "
          f"images listed in {args.data_dir}")
    return 0
