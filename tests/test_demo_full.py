"""`xfer demo --full`: the nets it asks the registry for, its options, and its report (Figure 2 with the spread
across seeds, Figure 3, the reduced figures, the table beside the paper's numbers) on a small tree of mini nets
trained by the real Caffe for a few iterations."""
import csv
import re
import subprocess
from collections import Counter

import numpy as np
import pytest

from conftest import ROOT, TINY_OVERRIDES, make_tiny_data
from helpers import xfer
from xfer import progress
from xfer.nets import registry, render
from xfer.report import draw, summary
from xfer.studies import demo, demo_full, pipeline

pytestmark = pytest.mark.caffe
FULL = demo.demo_names(demo_full.FULL_SEEDS, full=True)
# Two seeds of Figure 2 (the spread needs more than one), both natman directions, random features against netbase,
# and two reduced levels (reduced-6000 is the whole set): one net of each kind the full demo trains, at n = 1.
TRAINED = ["half0A", "half0B", "half1A", "half1B", "transfer0A0B_1_1", "transfer1A1B_1_1", "transfer0B0B_1_1",
           "transfer-ft0A0B_1_1", "halfnatmanA", "halfnatmanB", "transfernatmanAB_1_1", "transfernatmanBA_1_1",
           "netbase", "nolearn_1_1", "reduced-0001", "reduced-6000"]
DATASETS = {"whole_train": 10, "whole_valid": 10, "reduced0001_train": 10, "halfnatmanA_train": 6,
            "halfnatmanA_valid": 6, "halfnatmanB_train": 4, "halfnatmanB_valid": 4,
            **{f"half{s}{h}_{part}": 5 for s in "01" for h in "AB" for part in ("train", "valid")}}


def test_full_asks_the_registry_for_every_figure_of_the_paper():
    nets = [registry.get(name, "mini") for name in FULL]
    assert len(FULL) == len(set(FULL)) == 156
    families = Counter(net.family for net in nets)
    assert families == {"base": 8, "selffer": 28, "selffer-ft": 28, "transfer": 28, "transfer-ft": 28,
                        "natman-base": 2, "natman-transfer": 14, "netbase": 1, "nolearn": 7, "reduced": 12}
    for seed in "0123":
        of_seed = [net for net in nets if net.split == seed]
        assert len(of_seed) == 30 and {f"half{seed}A", f"half{seed}B"} <= {net.name for net in of_seed}
        assert all(registry.trained_half(net) == "B" for net in of_seed if net.family != "base")
        assert Counter(net.n for net in of_seed if net.n) == {n: 4 for n in range(1, 8)}
    natman = {net.name for net in nets if net.family == "natman-transfer"}
    assert natman == {f"transfernatman{xy}_1_{n}" for xy in ("AB", "BA") for n in range(1, 8)}
    assert {f"nolearn_1_{n}" for n in range(1, 8)} | {"netbase"} <= set(FULL)
    levels = sorted(registry.reduced_level(net) for net in nets if net.family == "reduced")
    assert levels == list(registry.suite("mini").reduced_levels)
    assert FULL.index("halfnatmanA") < FULL.index("transfernatmanAB_1_1")  # bases before the nets built on them
    assert demo.demo_names([0]) == demo.net_names([0], demo.ALL_N) and len(demo.demo_names([0])) == 30


@pytest.mark.parametrize("extra", [["--seeds", "1"], ["--seeds", "0,1,2,3"], ["--quick"]])
def test_full_rejects_seeds_and_quick_before_any_work(tmp_path, extra):
    proc = xfer("demo", "--full", "--out", str(tmp_path), *extra)
    assert proc.returncode == 2, proc.stderr
    assert "--full trains the paper's 4 random splits (seeds 0..3)" in proc.stderr
    assert not (tmp_path / "images").exists(), "bad arguments must be caught before any work"


def test_make_demo_full_runs_xfer_demo_full(tmp_path):
    """The README's `make demo-full` as written (after its warm `make setup`): it passes --full, shown by --full's
    own refusal of an extra --seeds, which stops it before any work."""
    proc = subprocess.run(["make", "-C", str(ROOT), "demo-full", f"DEMO_ARGS=--out {tmp_path} --seeds 1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert ".venv/bin/xfer demo --full --out" in proc.stdout, proc.stdout[-2000:]
    assert "--full trains the paper's 4 random splits" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "images").exists()


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory, caffe):
    """TRAINED, rendered with the tiny schedule and trained by `caffe train` on two CPU slots (the demo's runner)."""
    root = tmp_path_factory.mktemp("full-tree")
    data = make_tiny_data(root, DATASETS)
    nets = [registry.get(name, "mini") for name in TRAINED]
    render.render(nets, root / "results", data, backend="lmdb", overrides=TINY_OVERRIDES)
    with progress.reporting(lambda line, err=False: None):
        assert pipeline.train_nets(root / "results", nets, slots=2) == 0
    return root


def report(tree, out, paper):
    """The demo's report and what --full adds, on the small tree; (the report, --full's part, the lines said)."""
    lines = []
    with progress.reporting(lambda line, err=False: lines.append(line)):
        outcome = demo.report(tree / "results", out, TRAINED)
        meant = [name for name in FULL if not demo.is_base_a(name)]
        extra = demo_full.report_full(outcome["shown"], out, meant, paper)
    return outcome, extra, "\n".join(lines)


def test_full_report_draws_every_figure_and_names_what_is_missing(small_tree, tmp_path):
    outcome, extra, said = report(small_tree, tmp_path, tmp_path / "no-paper")
    written = outcome["figures"] + extra["figures"]
    for base in ("figure2_points", "figure2_lines", "figure3", "reduced", "reduced_log"):
        png = tmp_path / "figures" / f"{base}.png"
        assert str(png) in written and png.stat().st_size > 10_000
        assert (tmp_path / "figures" / f"{base}.pdf").read_bytes()[:5] == b"%PDF-"
    missing = extra["missing"]
    assert "split 2 (all" in missing["figure 2"] and "split 3 (all" in missing["figure 2"]
    assert "transfer0A0B_1_{2..7}" in missing["figure 2"] and "half0B" not in missing["figure 2"]
    assert "transfernatmanAB_1_{2..7}" in missing["figure 3"] and "nolearn_1_{2..7}" in missing["figure 3"]
    assert "reduced-0002" in missing["reduced"] and "reduced-0001" not in missing["reduced"]
    assert f"figure 3: {missing['figure 3']}" in said
    assert set(summary.families(outcome["shown"])) >= {"baseB", "AnB", "natman:natural", "natman:man-made",
                                                       "random", "netbase", "reduced"}


def test_figure2_spread_is_the_range_across_seeds(small_tree):
    numbers = summary.summarize(small_tree / "results")
    fam = summary.families({name: row for name, row in numbers.items() if not demo.is_base_a(name)})
    fig = draw.figure2_lines(fam, annotate=False, spread=True)
    bars = [c for c in fig.axes[0].containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(bars) == 2, "baseB and AnB have two nets at a point; BnB and AnB+ one"
    spans = sorted(tuple(np.round(seg.get_segments()[0][:, 1], 6)) for bar in bars for seg in bar.lines[2])
    expected = sorted(tuple(np.round(sorted(numbers[a]["top1"] for a in pair), 6))
                      for pair in (("half0B", "half1B"), ("transfer0A0B_1_1", "transfer1A1B_1_1")))
    assert spans == expected
    plain = draw.figure2_lines(fam, annotate=False)
    assert not [c for c in plain.axes[0].containers if type(c).__name__ == "ErrorbarContainer"]


def test_comparison_with_the_paper_side_by_side(small_tree, tmp_path, paper_dir):
    _, extra, said = report(small_tree, tmp_path, paper_dir)  # the folder holding results/ is taken too
    assert extra["comparison"] == [str(tmp_path / "comparison.txt"), str(tmp_path / "comparison.csv")]
    rows = {(row["series"], row["x"]): row for row in csv.DictReader((tmp_path / "comparison.csv").open())}
    mini = summary.summarize(small_tree / "results")
    paper = summary.summarize(paper_dir / "results")
    anb = rows[("AnB", "1")]
    mini_anb = np.mean([mini["transfer0A0B_1_1"]["top1"], mini["transfer1A1B_1_1"]["top1"]])
    mini_base = np.mean([mini["half0B"]["top1"], mini["half1B"]["top1"]])
    assert float(anb["mini_mean"]) == pytest.approx(mini_anb) and anb["mini_count"] == "2"
    assert float(anb["mini_minus_base"]) == pytest.approx(mini_anb - mini_base)
    paper_anb = [row["top1"] for name, row in paper.items()
                 if re.fullmatch(r"transfer(\d)([AB])\1(?!\2)[AB]_1_1", name) and row["top1"] is not None]
    paper_base = np.mean([row["top1"] for name, row in paper.items() if re.fullmatch(r"half\d[AB]", name)])
    assert float(anb["paper_mean"]) == pytest.approx(np.mean(paper_anb)) and anb["paper_count"] == "8"
    assert float(anb["paper_minus_base"]) == pytest.approx(np.mean(paper_anb) - paper_base)
    assert rows[("AnB", "7")]["mini_mean"] == "" and float(rows[("AnB", "7")]["paper_minus_base"]) < -0.05
    whole = rows[("reduced", "whole")]
    assert float(whole["mini_mean"]) == pytest.approx(mini["reduced-6000"]["top1"])
    assert float(whole["paper_mean"]) == pytest.approx(paper["reduced-1300"]["top1"])
    assert float(rows[("random", "1")]["mini_minus_base"]) == pytest.approx(
        mini["nolearn_1_1"]["top1"] - mini["netbase"]["top1"])
    text = (tmp_path / "comparison.txt").read_text()
    assert re.search(r"^transfer AnB\s+1\s+" + re.escape(f"{mini_anb:.4f} ["), text, re.M)
    assert "skipped" not in said and text.splitlines()[-1] in said


def test_comparison_skipped_in_one_line_without_the_paper(small_tree, tmp_path, monkeypatch):
    monkeypatch.setenv("XFER_PAPER_DIR", str(tmp_path / "nowhere"))
    _, extra, said = report(small_tree, tmp_path, None)
    assert extra["comparison"] == [] and not (tmp_path / "comparison.txt").exists()
    skipped = [line for line in said.splitlines() if line.startswith("comparison with the paper: skipped")]
    assert len(skipped) == 1 and str(tmp_path / "nowhere" / "results") in skipped[0] and "--paper" in skipped[0]
    assert (tmp_path / "figures" / "figure3.png").is_file()
