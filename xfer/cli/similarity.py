"""`xfer similarity`: linear CKA between trained nets, layer by layer (xfer/analysis/similarity.py)."""
from pathlib import Path

from ..analysis import activations, similarity
from ..errors import XferError
from ..nets import registry
from ..paths import PLOTS_DIR
from ..run.netdir import results_root


def parse_layers(text, allowed=registry.LAYERS) -> tuple:
    layers = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [layer for layer in layers if layer not in allowed]
    if unknown or not layers:
        raise XferError(f"--layers: unknown layer(s) {', '.join(unknown) or '(none given)'}",
                        fix=f"use a comma-separated list of {', '.join(allowed)}")
    return layers


def run_similarity(args) -> int:
    results = results_root(args.results, args.suite)
    folders = [activations.net_folder(results, name) for name in args.nets]
    probe_db = None
    if args.data:
        data_dir = Path(args.data_dir) if args.data_dir else activations.data_dir_of(folders[0])
        probe_db = activations.database_of(data_dir / args.data)
    result = similarity.compare(folders, parse_layers(args.layers), probe_db, args.images)
    print(similarity.table(result))
    for path in similarity.write(result, Path(args.out) / f"similarity_{folders[0].name}"):
        print(path)
    return 0


def register(sub):
    p = sub.add_parser("similarity", help="linear CKA between trained nets at each of the 8 layers (a heatmap)")
    p.add_argument("nets", nargs="+", metavar="NET",
                   help="the reference net, then the nets to compare with it (names in --results, or folders)")
    p.add_argument("--layers", default=",".join(registry.LAYERS), help="comma-separated layers (default all 8)")
    p.add_argument("--suite", default=registry.default_suite(), choices=registry.suite_names(),
                   help="which suite's results tree is the default")
    p.add_argument("--results", help="the results tree (default: the suite's)")
    p.add_argument("--data", metavar="DATASET",
                   help="the probe images: a dataset of the data dir, e.g. half0B_valid (default: the reference "
                        "net's validation set)")
    p.add_argument("--data-dir", help="where the datasets are (default: the one the reference net reads)")
    p.add_argument("--images", type=int, default=activations.DEFAULT_IMAGES,
                   help=f"probe images: the first N records of the database (default {activations.DEFAULT_IMAGES})")
    p.add_argument("--out", default=str(PLOTS_DIR), help="where the table and figure go (default: plots/)")
    p.set_defaults(func=run_similarity)
