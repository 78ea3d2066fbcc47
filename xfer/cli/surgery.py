"""`xfer surgery` (a transfer net's init weights) and `xfer verify` (frozen layers stayed frozen), in
xfer/run/surgery.py."""
from pathlib import Path

from ..nets import layout, registry
from ..run import surgery
from ..run.netdir import folder_suite, results_root, tree_suite


SUITE_HELP = "the registry's suite (default: the one the folder was rendered for, else paper)"


def run_surgery(args) -> int:
    net = surgery.net_for_dir(args.net, folder_suite(args.net, args.suite))
    manifest = surgery.surgery(args.net, net=net, base_file=args.base, out=args.out, seed=args.seed, force=args.force)
    for name, entry in manifest["layers"].items():
        origin = "copied from " + Path(entry["source"]).name if entry["source"] != "filler" else "filler init"
        print(f"{name:<9} {entry['policy']:<14} {origin}")
    print(f"wrote {manifest['init']} and {surgery.manifest_path(manifest['init'])}")
    return 0


def run_verify(args) -> int:
    suite = tree_suite(args.results, args.suite)
    net = registry.get(args.net, suite)
    report = surgery.verify(net, results=results_root(args.results, suite), snapshot=args.snapshot)
    surgery.say_report(net, report)
    return 0 if report["ok"] else 1


def register(sub):
    p = sub.add_parser("surgery", help="init weights of a transfer net: copy its base's frozen/tuned layers")
    p.add_argument("--net", required=True, help="the rendered net folder, e.g. results/transfer0A0B_1_3")
    p.add_argument("--base", help=f"the base weights (default: NET/{layout.BASE_LINK}/<final snapshot>)")
    p.add_argument("--out", help=f"where to write the init weights (default: NET/{layout.INIT})")
    p.add_argument("--suite", choices=registry.suite_names(), help=SUITE_HELP)
    p.add_argument("--seed", type=int, help="filler seed of the fresh layers (default: from the net's name)")
    p.add_argument("--force", action="store_true", help="overwrite existing init weights")
    p.set_defaults(func=run_surgery)
    p = sub.add_parser("verify", help="check that a net's frozen layers equal the base (or init) bit for bit")
    p.add_argument("net", help="net name")
    p.add_argument("--suite", choices=registry.suite_names(), help=SUITE_HELP)
    p.add_argument("--results", help="the results tree (default: results/ of the kit)")
    p.add_argument("--snapshot", help="the .caffemodel to check (default: the newest snapshot)")
    p.set_defaults(func=run_verify)

