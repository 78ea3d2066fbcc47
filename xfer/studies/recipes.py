"""`xfer recipe-search`: look for a mini recipe in which the paper's four Figure 2 effects show, and say honestly
which do. A recipe is a set of render overrides (`xfer render --set`: schedule, upper-layer width, dropout, a longer
budget for the bases alone); each is trained on the suite's data for the seeds asked, through the mini pipeline the
demo uses (xfer/studies/pipeline.py), into `<out>/<recipe>/results`, and measured with the same summary numbers as
Figure 2.

The four effects, per seed, as paired differences on the same half B (percentage points of top-1):
  specificity   AnB at n = 1 minus AnB at n = 7                     (the paper: transfer falls with n)
  dip           base B minus the lowest BnB at n = 3..5             (the paper: fragile co-adaptation)
  recovery      BnB+ at n = 4 minus base B                          (the paper: fine-tuning recovers it, about 0)
  gain          mean AnB+ at n = 1, 4, 7 minus base B               (the paper: transfer + fine-tuning generalises)
An effect holds on a seed when its difference exceeds the noise of two accuracies on the same val set (twice the
standard error of a difference of two binomial proportions at that seed's base accuracy); recovery holds when BnB+
is not below base B by more than that. A recipe shows an effect when it holds on every seed tried and on at least
MIN_SEEDS of them.
The table adds one control, with no verdict: AnB+ minus BnB+, both at n = 4. Both nets trained twice as long as
base B (a base's run, then their own), so where the bases are short of convergence the gain measures that extra
training too; AnB+ above BnB+ is what features learned on A add over B's own (the paper: AnB+ 1-2 points above
BnB+ at every n, its bases trained to convergence).
"""
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import XferError
from ..nets import overrides as override_values
from ..nets import registry
from ..paths import cache_dir, write_text_atomic
from ..progress import say
from ..report import summary
from . import pipeline

SUITE = pipeline.SUITE
MIN_SEEDS = 3
# The nets each seed needs: family -> the layers n it is trained at (every transfer onto half B, as in Figure 2;
# both bases always, so "base" lists no layers).
PROBES = {"base": (), "selffer": (3, 4, 5), "selffer-ft": (4,), "transfer": (1, 7), "transfer-ft": (1, 4, 7)}
EFFECTS = ("specificity", "dip", "recovery", "gain")


@dataclass(frozen=True)
class Recipe:
    name: str
    overrides: dict = field(default_factory=dict)
    why: str = ""
    suites: tuple = (SUITE,)  # the suites it is searched on (`--suite`); "today" is every suite's own schedule


RECIPES = {}


def register(recipe: Recipe) -> Recipe:
    override_values.check(recipe.overrides)  # a recipe with a bad key fails at import, not after an hour
    RECIPES[recipe.name] = recipe
    return recipe


register(Recipe("today", {}, "the suite's own recipe: 1000 iterations for every net, fc6/fc7 128 wide",
                suites=("mini", "glyphs")))
register(Recipe("base3x", {"base_iter_scale": 3}, "bases train 3000 iterations, transfers retrain for 1000"))
register(Recipe("fc32", {"fc_width": 32}, "fc6/fc7 32 wide: upper layers less able to re-learn"))
register(Recipe("decay10x", {"weight_decay": 0.005}, "weight decay 10x"))
register(Recipe("dropout75", {"dropout_ratio": 0.75}, "dropout 0.75 after fc6 and fc7"))
register(Recipe("iter3x", {"max_iter": 3000, "stepsize": 2250, "snapshot": 3000, "test_interval": 3000},
                "every net 3000 iterations (equal budgets, as the paper)"))
register(Recipe("base10x", {"base_iter_scale": 10}, "bases train 10000 iterations, transfers retrain for 1000"))
register(Recipe("dropout0", {"dropout_ratio": 0}, "no dropout: dropout exists to break co-adaptation"))
register(Recipe("base10x-dropout0", {"base_iter_scale": 10, "dropout_ratio": 0}, "base10x and dropout0 together"))
register(Recipe("base3x-fc32", {"base_iter_scale": 3, "fc_width": 32}, "base3x and fc32 together"))
# The glyph suite (200 classes, 100 per half): a wider and a narrower net on today's schedule.
register(Recipe("wide", {"width_scale": 1.5}, "every layer but fc8 1.5x as wide (conv 24..72, fc 192)",
                suites=("glyphs",)))
register(Recipe("narrow", {"width_scale": 0.5}, "every layer but fc8 half as wide (conv 8..24, fc 64)",
                suites=("glyphs",)))
register(Recipe("long", {"max_iter": 3000, "stepsize": 2250, "snapshot": 3000, "test_interval": 3000},
                "every net 3000 iterations: bases nearer convergence, equal budgets", suites=("glyphs",)))


def list_names(suite=SUITE) -> list:
    """The recipes searched on a suite, in registry order."""
    return [name for name, recipe in RECIPES.items() if suite in recipe.suites]


def get(name, suite=SUITE) -> Recipe:
    if name not in list_names(suite):
        raise XferError(f"unknown recipe {name!r} for the {suite} suite",
                        fix=f"use one of: {', '.join(list_names(suite))}")
    return RECIPES[name]


def net_names(seed, suite=SUITE) -> list:
    """Both bases of the seed, then each probed family's nets onto half B (the mini pipeline's selection, asked of the
    registry)."""
    return pipeline.split_names(seed, PROBES, suite)


def find(numbers, seed, family, n=None, suite=SUITE):
    """The top-1 of the seed's net of that family (onto half B at layer n), or None if it has no number."""
    for name, row in numbers.items():
        net = registry.get(name, suite)
        if (net.split == str(seed) and net.family == family and net.n == n
                and registry.trained_half(net) == "B" and row.get("top1") is not None):
            return row["top1"]
    return None


def seed_effects(numbers, seed, suite=SUITE) -> "dict | None":
    """The four paired differences of one seed (percentage points), or None while a net lacks its number."""
    base = find(numbers, seed, "base", suite=suite)
    bnb, anb, anb_plus, bnb_plus = ([find(numbers, seed, family, n, suite) for n in PROBES[family]]
                                    for family in ("selffer", "transfer", "transfer-ft", "selffer-ft"))
    if None in [base, *bnb, *anb, *anb_plus, *bnb_plus]:
        return None
    return {"base": 100 * base, "specificity": 100 * (anb[0] - anb[-1]), "dip": 100 * (base - min(bnb)),
            "recovery": 100 * (sum(bnb_plus) / len(bnb_plus) - base),
            "gain": 100 * (sum(anb_plus) / len(anb_plus) - base),
            "control": 100 * (anb_plus[PROBES["transfer-ft"].index(4)] - bnb_plus[PROBES["selffer-ft"].index(4)])}


def noise(top1, images) -> float:
    """Twice the standard error (percentage points) of the difference of two accuracies near `top1` measured on
    the same number of val images: a difference below it could be the val set's sampling alone."""
    return 200 * math.sqrt(2 * top1 * (1 - top1) / images)


def holds(effect, value, threshold) -> bool:
    if effect == "recovery":
        return value > -threshold
    return value > threshold


def verdict(per_seed, thresholds) -> dict:
    """{effect: {"mean", "min", "max", "held", "seeds", "yes"}} over the seeds measured; `thresholds`: the noise of
    each seed (its base's accuracy sets it)."""
    out = {}
    for effect in EFFECTS:
        values = [row[effect] for row in per_seed.values()]
        held = sum(holds(effect, row[effect], thresholds[seed]) for seed, row in per_seed.items())
        out[effect] = {"mean": sum(values) / len(values), "min": min(values), "max": max(values), "held": held,
                       "seeds": len(values), "yes": held == len(values) and held >= MIN_SEEDS}
    return out


def default_out(suite=SUITE) -> Path:
    """~/.cache/xfer/recipes for the mini suite; below the suite's own cache folder for another (glyphs/recipes)."""
    return cache_dir() / registry.suite(suite).work / "recipes"


def prepare_data(out, seeds, data=None, suite=SUITE) -> Path:
    """The suite's image tree, lists, halves and databases under `out` (or an existing data dir, as it is)."""
    if data is not None:
        return Path(data)
    data = out / "data"
    nets = [registry.get(name, suite) for seed in seeds for name in net_names(seed, suite)]
    pipeline.make_lists(pipeline.make_images(out, suite), data, seeds, suite)
    pipeline.make_databases(data, nets)
    return data


def train_recipe(recipe, out, data, seeds, extra, slots, suite=SUITE) -> Path:
    """Render the recipe's nets (with `extra` overrides on top) and train what is not finished; its results dir."""
    results = out / recipe.name / "results"
    nets = [registry.get(name, suite) for seed in seeds for name in net_names(seed, suite)]
    used = dict(recipe.overrides, **extra)
    say(f"\n== recipe {recipe.name} ({override_values.describe(used)}): {len(nets)} nets into {results}")
    pipeline.render_nets(results, data, nets, overrides=used)
    code = pipeline.train_nets(results, nets, slots, suite)
    if code:
        raise XferError(f"recipe {recipe.name}: a net failed to train (exit {code})", path=results,
                        fix="see `xfer status --results " + str(results) + "` and the net's caffe log")
    return results


def measure(recipe, results, seeds, seconds, extra, suite=SUITE) -> dict:
    numbers, _ = summary.load(results, [name for seed in seeds for name in net_names(seed, suite)], cache=False)
    per_seed = {seed: seed_effects(numbers, seed, suite) for seed in seeds}
    missing = [seed for seed, row in per_seed.items() if row is None]
    if missing:
        raise XferError(f"recipe {recipe.name}: seeds {missing} lack a net's numbers", path=results,
                        fix="run the search again: it trains what is missing")
    images = registry.suite(suite).val_images["half"]
    thresholds = {seed: noise(row["base"] / 100, images) for seed, row in per_seed.items()}
    return {"recipe": recipe.name, "suite": suite, "overrides": dict(recipe.overrides, **extra), "why": recipe.why,
            "seeds": list(seeds), "seconds": round(seconds), "thresholds": {str(s): v for s, v in thresholds.items()},
            "per_seed": {str(s): row for s, row in per_seed.items()}, "effects": verdict(per_seed, thresholds)}


def describe_effect(row) -> str:
    """yes / no (held on k of n seeds) / screen (held on every seed tried, fewer than MIN_SEEDS), then the mean
    [min..max] across seeds in points."""
    if row["yes"]:
        word = "yes"
    elif row["held"] == row["seeds"]:
        word = f"screen {row['held']}/{row['seeds']}"
    else:
        word = "no" if row["held"] == 0 else f"no ({row['held']}/{row['seeds']})"
    spread = f" [{row['min']:+.1f}..{row['max']:+.1f}]" if row["seeds"] > 1 else ""
    return f"{word}: {row['mean']:+.1f}{spread}"


def earlier_seconds(path) -> float:
    """Training time spent on the recipe by earlier runs into the same folder (their nets are reused)."""
    return json.loads(path.read_text()).get("seconds", 0) if path.is_file() else 0


def control(per_seed) -> str:
    """Mean [min..max] across seeds of AnB+ minus BnB+ at n = 4 ("-" in a record measured before the control)."""
    if any("control" not in row for row in per_seed.values()):
        return "-"
    values = [row["control"] for row in per_seed.values()]
    spread = f" [{min(values):+.1f}..{max(values):+.1f}]" if len(values) > 1 else ""
    return f"{sum(values) / len(values):+.1f}{spread}"


def table(measured) -> str:
    """A Markdown table: one row per recipe, each effect's verdict with its mean [min..max] in points."""
    head = ["recipe", "overrides", "seeds", "time", "base B", *EFFECTS, "AnB+ − BnB+ at n = 4"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in measured:
        base = sum(s["base"] for s in row["per_seed"].values()) / len(row["per_seed"])
        cells = [row["recipe"], override_values.describe(row["overrides"]), ",".join(map(str, row["seeds"])),
                 f"{row['seconds'] / 60:.1f} min", f"{base:.1f}%",
                 *(describe_effect(row["effects"][effect]) for effect in EFFECTS), control(row["per_seed"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def measured_table(out=None, suite=SUITE) -> str:
    """The table of every recipe measured under `out` (their effects.json, in the registry's order)."""
    out = Path(out) if out else default_out(suite)
    rows = [json.loads(path.read_text()) for path in sorted(out.glob("*/effects.json"))]
    if not rows:
        raise XferError("no recipe has been measured here yet", path=out,
                        fix=f"run `xfer recipe-search --suite {suite} --recipes NAME --seeds 0` first")
    order = list(RECIPES)
    rows.sort(key=lambda row: order.index(row["recipe"]) if row["recipe"] in order else len(order))
    return table(rows)


def search(names, seeds, out=None, data=None, extra=None, slots=1, suite=SUITE) -> list:
    """Train and measure each recipe on the suite; writes `<out>/<recipe>/effects.json` and `<out>/recipes.md`;
    returns the measurements."""
    out = Path(out) if out else default_out(suite)
    recipes = [get(name, suite) for name in names]
    extra = override_values.check(extra or {})
    data = prepare_data(out, seeds, data, suite)
    measured = []
    for recipe in recipes:
        started = time.monotonic()
        results = train_recipe(recipe, out, data, seeds, extra, slots, suite)
        record = out / recipe.name / "effects.json"
        row = measure(recipe, results, seeds, time.monotonic() - started + earlier_seconds(record), extra, suite)
        write_text_atomic(record, json.dumps(row, indent=1) + "\n")
        measured.append(row)
    text = table(measured)
    write_text_atomic(out / "recipes.md", text)
    say("\n" + text)
    noises = [v for row in measured for v in row["thresholds"].values()]
    say(f"noise thresholds per seed: {min(noises):.2f}..{max(noises):.2f} points; table in {out / 'recipes.md'}")
    return measured
