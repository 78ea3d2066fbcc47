"""`xfer probe`: a linear probe per layer on a base net's frozen features for another task (xfer/analysis/probe.py)."""
from pathlib import Path

from ..analysis import activations, probe
from ..nets import registry
from ..paths import PLOTS_DIR
from ..run.netdir import results_root
from .similarity import parse_layers


def run_probe(args) -> int:
    results = results_root(args.results, args.suite)
    folder = activations.net_folder(results, args.base)
    data_dir = Path(args.data_dir) if args.data_dir else activations.data_dir_of(folder)
    train_db, valid_db = probe.dataset_databases(data_dir, args.data)
    result = probe.probe(folder, train_db, valid_db, parse_layers(args.layers, probe.PROBE_LAYERS),
                         args.train_images, args.valid_images)
    families = probe.trained_families(folder.parent, folder.name, args.data)
    print(probe.table(result))
    for path in probe.write(result, families, Path(args.out) / f"probe_{folder.name}_{args.data}"):
        print(path)
    return 0


def register(sub):
    p = sub.add_parser("probe", help="linear probe per layer on a base net's frozen features for another task")
    p.add_argument("base", metavar="BASE", help="the trained base net (a name in --results, or its folder)")
    p.add_argument("--data", required=True, metavar="DATASET",
                   help="the task: <DATASET>_train fits the probe, <DATASET>_valid scores it (e.g. half0B)")
    p.add_argument("--data-dir", help="where the datasets are (default: the one the base net reads)")
    p.add_argument("--layers", default=",".join(probe.PROBE_LAYERS),
                   help="comma-separated layers; data is the pixels (default: data and all 8)")
    p.add_argument("--train-images", type=int, default=probe.TRAIN_IMAGES, help="images the probe is fit on")
    p.add_argument("--valid-images", type=int, default=probe.VALID_IMAGES, help="images it is scored on")
    p.add_argument("--suite", default=registry.default_suite(), choices=registry.suite_names(),
                   help="which suite's results tree is the default")
    p.add_argument("--results", help="the results tree (default: the suite's)")
    p.add_argument("--out", default=str(PLOTS_DIR), help="where the numbers and figure go (default: plots/)")
    p.set_defaults(func=run_probe)
