"""`xfer recipe-search`: train mini recipes; which of the paper's Figure 2 effects show (xfer/studies/recipes.py)."""
import os

from ..studies import pipeline, recipes
from ..nets import overrides, registry


def names_of(text, suite=recipes.SUITE) -> list:
    return [part.strip() for part in text.split(",") if part.strip()] or recipes.list_names(suite)


def run_search(args) -> int:
    if args.list:
        for recipe in (recipes.RECIPES[name] for name in recipes.list_names(args.suite)):
            print(f"{recipe.name:12} {overrides.describe(recipe.overrides):40} {recipe.why}")
        return 0
    if args.table:
        print(recipes.measured_table(args.out, args.suite), end="")
        return 0
    recipes.search(names_of(args.recipes, args.suite), pipeline.parse_seeds(args.seeds), args.out, args.data,
                   overrides.parse_assignments(args.set), args.slots, args.suite)
    return 0


def register(sub) -> None:
    p = sub.add_parser("recipe-search", help="train mini recipes and say which of the paper's Figure 2 effects "
                                             "(specificity, co-adaptation dip, recovery, AnB+ gain) show")
    p.add_argument("--suite", default=recipes.SUITE, choices=[s for s in registry.suite_names()
                                                              if registry.suite(s).task],
                   help="the miniature searched: mini (Fashion-MNIST, the default) or glyphs (200 classes)")
    p.add_argument("--recipes", default="", help="comma-separated recipe names (default: all; --list names them)")
    p.add_argument("--seeds", default="0,1,2", help="random-half seeds (default 0,1,2)")
    p.add_argument("--out", help=f"where everything goes (default: {recipes.default_out()}; "
                                 f"{recipes.default_out('glyphs')} for glyphs)")
    p.add_argument("--data", help="an existing data dir with the halves' databases (default: made under --out)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="an override on top of every recipe (as `xfer render --set`), e.g. max_iter=20 for a smoke run")
    p.add_argument("--slots", type=int, default=max(1, os.cpu_count() or 1), help="nets trained at once")
    p.add_argument("--list", action="store_true", help="list the recipes and exit")
    p.add_argument("--table", action="store_true",
                   help="print the table of every recipe measured under --out so far (trains nothing)")
    p.set_defaults(func=run_search)
