"""`xfer nets` (the registry as a table or JSON) and `xfer render` (xfer/nets/render.py; --check, --verify)."""
import dataclasses
import json
import sys
from pathlib import Path

from ..errors import XferError
from ..nets import layout, overrides, registry, render
from ..paths import DATA_DIR, TEMPLATES_DIR


def run_nets(args) -> int:
    selected = registry.match(args.patterns, args.suite)
    if args.family:
        selected = [n for n in selected if n.family == args.family]
    if not selected:
        raise XferError(f"no {args.suite} net matches {' '.join(args.patterns) or '*'}",
                        fix=f"see `xfer nets --suite {args.suite}`")
    if args.json:
        json.dump([dataclasses.asdict(n) for n in selected], sys.stdout, indent=1)
        print()
        return 0
    print(f"{'name':<22} {'family':<16} {'base':<12} {'train':<18} {'val':<14} policy    n")
    for n in selected:
        print(f"{n.name:<22} {n.family:<16} {n.base or '-':<12} {n.train_data:<18} {n.val_data:<14} "
              f"{render.policy_letters(n)}  {n.n or '-'}")
    print(f"{len(selected)} nets (policy per conv1..fc8: F frozen, T tuned, n fresh, R random-frozen, t trained)")
    return 0


def selected_nets(args) -> list:
    selected = registry.match(args.patterns, args.suite)
    if not selected:
        for pattern in args.patterns:  # a plain name: let get() list the closest names
            registry.get(pattern, args.suite)
        raise XferError(f"no {args.suite} net matches {' '.join(args.patterns)}")
    return selected


def given_overrides(args):
    """--set KEY=VALUE (checked), {} with --reset, None without either: each folder keeps its recorded ones."""
    given = overrides.parse_assignments(args.set)
    if args.reset and given:
        raise XferError("--reset and --set exclude each other", fix="--reset renders the registry's schedule; "
                                                                    "--set replaces the recorded overrides")
    return {} if args.reset else (given or None)


def check_rendered(nets, out, data_dir, args) -> int:
    problems = render.drift(nets, out, data_dir, args.backend, args.shared_images, given_overrides(args))
    if not args.patterns:
        problems += [f"{out / name}: a rendered net the registry does not know" for name in
                     render.unknown_folders(out, args.suite)]
    for line in problems:
        print(line)
    print(f"{len(nets)} nets checked, {len(problems)} problem(s)")
    return 1 if problems else 0


def verify_rendered(nets, out, backend) -> int:
    from ..nets import check  # lazy for start-up: only --verify parses protobufs and runs Caffe's upgrader
    problems, upgraded = check.verify_rendered(nets, out, backend)
    for line in problems:
        print(line)
    print(f"{len(nets)} nets verified against Caffe's upgrade of their 2014-syntax rendering "
          f"({upgraded} distinct files upgraded): {len(problems)} problem(s)")
    return 1 if problems else 0


def show_diff(nets, out, data_dir, args, templates) -> int:
    from ..nets import diff  # lazy for start-up: only --diff needs difflib's grouping
    text = diff.diff_text(nets, out, data_dir, backend=args.backend, shared_images=args.shared_images,
                          image_list=args.image_list, image_root=args.image_root, templates_dir=templates,
                          overrides=given_overrides(args))
    print(text.rstrip("\n") if text else f"{len(nets)} nets: a render would change nothing in {out}")
    return 0


def run_render(args) -> int:
    nets = selected_nets(args)
    out = Path(args.out) if args.out else registry.default_results(args.suite)
    data_dir = Path(args.data_dir) if args.data_dir else DATA_DIR
    if args.check:
        return check_rendered(nets, out, data_dir, args)
    templates = Path(args.templates) if args.templates else TEMPLATES_DIR
    if args.diff:
        return show_diff(nets, out, data_dir, args, templates)
    given = given_overrides(args)
    render.render(nets, out, data_dir, args.backend, overrides=given, shared_images=args.shared_images,
                  force=args.force, image_list=args.image_list, image_root=args.image_root, templates_dir=templates)
    print(f"rendered {len(nets)} nets into {out}" + ("" if given is None else
                                                     f" (overrides: {overrides.describe(given)})"))
    if args.verify:
        return verify_rendered(nets, out, args.backend)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("nets", help="list the registry's nets (name, family, base, datasets, policy)")
    p.add_argument("patterns", nargs="*", metavar="PATTERN", help="fnmatch patterns, e.g. 'transfer0A*'")
    p.add_argument("--suite", choices=registry.suite_names(), default=registry.default_suite())
    p.add_argument("--family", help="only nets of this family (base, selffer, transfer-ft, ...)")
    p.add_argument("--json", action="store_true", help="print the entries as JSON")
    p.set_defaults(func=run_nets)

    p = subparsers.add_parser("render", help="write each net's solver/train/val prototxts and data links")
    p.add_argument("patterns", nargs="*", metavar="NET_PATTERN", help="fnmatch patterns (default: all nets)")
    p.add_argument("--suite", choices=registry.suite_names(), default=registry.default_suite())
    p.add_argument("--out", help="output folder (default: results/ for paper, the cache for mini)")
    p.add_argument("--data-dir", help=f"the datasets' folder (default: {DATA_DIR})")
    p.add_argument("--backend", choices=sorted(render.BACKENDS), default="lmdb")
    p.add_argument("--shared-images", action="store_true",
                   help="read images through ImageData from <data-dir>/<dataset>/images.txt (disk-saving mode)")
    p.add_argument("--image-list", default=render.IMAGE_LIST, help="list file name inside each dataset folder")
    p.add_argument("--image-root", default=render.IMAGE_ROOT, help="shared image tree, relative to the data dir")
    p.add_argument("--check", action="store_true", help="render to a temporary place and list every difference")
    p.add_argument("--force", action="store_true", help="overwrite files edited by hand since their last render, and "
                   "re-render trained nets whose recipe changed")
    p.add_argument("--verify", action="store_true",
                   help="also check the files against Caffe's upgrader run on a 2014-syntax rendering")
    p.add_argument("--diff", action="store_true",
                   help="print what a render would change (unified diffs, one per distinct change, with its nets)")
    p.add_argument("--templates", help=f"the templates folder (default: {TEMPLATES_DIR})")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change the schedule, batch sizes or crop of every net rendered (repeatable; recorded in "
                        f"each folder's {layout.RENDER_RECORD}). Keys: {', '.join(overrides.KEYS)}")
    p.add_argument("--reset", action="store_true", help="drop the recorded overrides: the registry's schedule")
    p.set_defaults(func=run_render)
