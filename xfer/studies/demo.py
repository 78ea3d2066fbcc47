"""`xfer demo`: the whole study in miniature on Fashion-MNIST, on a CPU, through the kit's own stages.

Its data and training are the mini pipeline's (xfer/studies/pipeline.py), each step the stage a full-scale run uses,
called on a small tree under --out:
  images  Debian's dataset-fashion-mnist -> <out>/images/{train,val}/NN_<class>/*.png   (xfer/studies/fashion.py)
  lists   the image tree -> whole_train / whole_valid lists                           (`xfer imagenet-lists`)
  splits  random halves per seed, the natman analogue, reduced volumes                (`xfer splits`)
  db      LMDBs and mean files of the datasets the nets read                          (`xfer db`)
  render  the mini suite's nets from the registry and templates                       (`xfer render`)
  train   bases, then selffer BnB/BnB+ and transfer AnB/AnB+ for n = 1..7 on CPU slots (`xfer run`)
then its own:
  report  the summary table and the paper's Figure 2                                  (`xfer summary`, `xfer plot`)
  layers  linear CKA against base B and linear probes of base A, layer by layer    (`xfer similarity`, `xfer probe`)
`--full` (xfer/studies/demo_full.py) adds the paper's 4 splits, Figure 3's and the reduced figure's nets, their
figures and a table beside the paper's numbers.
Every step keeps what is done, so running it again only does what is missing.
"""
import json
import time
from pathlib import Path

from ..analysis import layerwise
from ..errors import XferError
from ..nets import registry
from ..paths import cache_dir, write_text_atomic
from ..progress import say
from ..report import figures, summary
from ..run.netdir import read_status
from . import demo_full, pipeline
from .pipeline import SUITE, done, step

ALL_N = tuple(range(1, 8))
QUICK_N = (1, 4, 7)  # the ends and the middle of the curve: enough for a smoke run of every family
# BnB, BnB+, AnB, AnB+: the registry families of the transfers the demo trains, each onto half B
FAMILIES = ("selffer", "selffer-ft", "transfer", "transfer-ft")


def default_out() -> Path:
    return cache_dir() / "demo"


def net_names(seeds, layers) -> list:
    """The demo's nets: both bases of each seed, then BnB, BnB+, AnB, AnB+ at each layer n (asked of the registry)."""
    return [name for seed in seeds for name in pipeline.split_names(seed, {family: layers for family in FAMILIES})]


def report(results, out, names) -> dict:
    """summary.txt / .csv and Figure 2 (points and lines; with the mean and range across seeds where there are
    several); {numbers, shown (the nets the figures take), figures, verified}."""
    started = step("report: summary table and Figure 2")
    numbers, problems = summary.load(results, names)
    for line in summary.problem_lines(problems):
        say(line, err=True)
    # Every demo transfer targets B, so the families and the figure take base B alone (the paper's baseB pooled both
    # halves of four splits because its transfers ran both ways); half A stays in the per-net table.
    shown = {name: row for name, row in numbers.items() if not is_base_a(name)}
    table = summary.table(numbers) + "\n\n" + summary.family_table(shown) + "\n"
    write_text_atomic(out / "summary.txt", table)
    write_text_atomic(out / "summary.csv", summary.to_csv(numbers))
    figure_files = []
    # The paper's numbered notes are left off: they describe ImageNet's curves, not necessarily these.
    if shown:
        for style in ("points", "lines"):
            figure_files += figures.figure2(shown, out / "figures" / f"figure2_{style}", style=style, annotate=False,
                                            suite=SUITE, expected=[n for n in names if not is_base_a(n)],
                                            spread=True)
    verified = frozen_checks(results, names)
    say(table)
    done(started)
    return {"numbers": numbers, "shown": shown, "figures": [str(f) for f in figure_files], "verified": verified}


def layer_by_layer(results, out, seed) -> list:
    """The similarity heatmap and the probe figure of the first seed's nets, beside Figure 2 (PNG and PDF paths)."""
    started = step("layer by layer: linear CKA against base B, linear probes of base A's frozen layers on B")
    written = layerwise.draw_all(results, out / "figures", split=seed, log=say)
    done(started)
    return [str(path) for path in written]


def is_base_a(name) -> bool:
    net = registry.get(name, SUITE)
    return net.family == "base" and registry.trained_half(net) == "A"


def frozen_checks(results, names) -> dict:
    """{net: True/False} for every demo net with frozen layers: did they stay bit-identical to the base's?"""
    checks = {}
    for name in names:
        net = registry.get(name, SUITE)
        if net.frozen_layers():
            verify = read_status(results / name).get("verify")
            checks[name] = bool(verify and verify.get("ok"))
    return checks


def base_accuracy(numbers, seeds) -> list:
    """Lines naming each base net's top-1, flagging one under the mini suite's 85% target."""
    lines = []
    for seed in seeds:
        for half in "AB":
            top1 = (numbers.get(f"half{seed}{half}") or {}).get("top1")
            if top1 is not None:
                flag = "" if top1 >= 0.85 else "  (under the 85% the mini recipe aims at)"
                lines.append(f"   base half{seed}{half}: top-1 {top1:.4f}{flag}")
    return lines


def demo_names(seeds, quick=False, full=False) -> list:
    """The nets of a run: Figure 2's of each seed (n = 1..7, or QUICK_N), and with full those of Figure 3 and the
    reduced figure."""
    names = net_names(seeds, QUICK_N if quick else ALL_N)
    return names + demo_full.extra_names() if full else names


def run_demo(out=None, seeds=(0,), quick=False, slots=1, force=False, full=False, paper=None) -> int:
    """The whole demo into `out` (default: the cache); returns the exit code (non-zero: a net failed or a frozen
    layer changed). full: every figure of the paper (seeds 0..3; see demo_full); paper: the paper's results tree to
    compare with (default paths.paper_results())."""
    out = Path(out) if out else default_out()
    seeds = demo_full.FULL_SEEDS if full else seeds
    names = demo_names(seeds, quick, full)
    nets = [registry.get(name, SUITE) for name in names]
    data, results = out / "data", out / "results"
    started = time.monotonic()
    say(f"xfer demo{' --full' if full else ''}: {len(nets)} nets (seeds {','.join(map(str, seeds))}, "
        f"n = {','.join(map(str, QUICK_N if quick else ALL_N))}) in {out}")
    pipeline.make_lists(pipeline.make_images(out), data, seeds)
    pipeline.make_databases(data, nets)
    pipeline.render_nets(results, data, nets, force)
    code = pipeline.train_nets(results, nets, slots)
    outcome = report(results, out, names)
    if full:
        extra = demo_full.report_full(outcome["shown"], out, [n for n in names if not is_base_a(n)], paper)
        outcome.update(extra, figures=outcome["figures"] + extra["figures"])
    outcome["figures"] += layer_by_layer(results, out, seeds[0])
    failed = [name for name, ok in outcome["verified"].items() if not ok]
    write_text_atomic(out / "demo.json", json.dumps(
        {"nets": names, "seconds": round(time.monotonic() - started, 1), "figures": outcome["figures"],
         "comparison": outcome.get("comparison", []), "missing": outcome.get("missing", {}),
         "verified": outcome["verified"], "exit": code}, indent=1) + "\n")
    say_outcome(outcome, seeds, out, failed)
    say(f"xfer demo: done in {time.monotonic() - started:.0f} s")
    return code or (1 if failed else 0)


def say_outcome(outcome, seeds, out, failed) -> None:
    """The closing lines: base accuracies, the frozen-layer checks and every file a person opens next."""
    say("\n".join(base_accuracy(outcome["numbers"], seeds)))
    say(f"\nfrozen layers verified in {sum(outcome['verified'].values())} of {len(outcome['verified'])} nets"
        + (f"; NOT in: {', '.join(failed)}" if failed else ""))
    say(f"table:   {out / 'summary.txt'} (and summary.csv)")
    for path in outcome.get("comparison", []):
        say(f"compare: {path}")
    for path in outcome["figures"]:
        say(f"figure:  {path}")


def choose_seeds(text, quick=False, full=False) -> list:
    """The seeds of a run from --seeds (None: not given): full means the paper's 4 splits at every n, so it takes
    neither --seeds nor --quick."""
    if full and (text is not None or quick):
        raise XferError("--full trains the paper's 4 random splits (seeds 0..3) at every n = 1..7",
                        fix="leave out --seeds and --quick with --full (or --full, for a part of the study)")
    return list(demo_full.FULL_SEEDS) if full else pipeline.parse_seeds("0" if text is None else text)
