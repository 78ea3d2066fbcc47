"""`xfer plot` and the figure API: the paper's figures from its logs, the demo-shaped partial tree (one split),
bad input per net, `--compare`, and a tiny tree trained by the real Caffe (its Caffe 1.0 logs end to end)."""
import datetime

import numpy as np
import pytest

from helpers import accuracy_run, write, xfer
from xfer.report import figures, summary

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def shared_cache(tmp_path_factory, monkeypatch):
    """One parse cache for the session: the paper's tree is parsed cold once, then read warm."""
    monkeypatch.setenv("XFER_CACHE", str(tmp_path_factory.getbasetemp() / "xfer-cache"))


def demo_numbers(seed=0):
    """What the kit's demo trains: half0A/B, BnB, BnB+, AnB, AnB+ for n = 1..7 of split 0 only."""
    rng = np.random.RandomState(seed)
    rows = {"half0A": 0.9, "half0B": 0.92}
    for n in range(1, 8):
        rows[f"transfer0B0B_1_{n}"] = 0.91 - 0.01 * (n in (3, 4, 5))
        rows[f"transfer-ft0B0B_1_{n}"] = 0.915
        rows[f"transfer0A0B_1_{n}"] = 0.92 - 0.02 * n
        rows[f"transfer-ft0A0B_1_{n}"] = 0.93
    return {k: {"top1": v + rng.uniform(-0.002, 0.002), "valid_loss": 0.3, "train_loss": 0.2, "tests": 3,
                "last_iter": 750} for k, v in rows.items()}


def assert_figure(paths):
    assert [p.suffix for p in paths] == [".pdf", ".png"]
    assert paths[0].read_bytes()[:5] == b"%PDF-" and paths[1].read_bytes()[:8] == PNG
    assert paths[1].stat().st_size > 20000


def test_figure2_for_the_demo_tree(tmp_path):
    numbers = demo_numbers()
    assert_figure(figures.figure2(numbers, tmp_path / "fig2", style="points"))
    assert_figure(figures.figure2(numbers, tmp_path / "fig2_lines.pdf", style="lines"))
    assert figures.guess_suite(numbers) == "mini"
    note = figures.missing_text("figure 2", set(numbers), "mini")
    assert "split 1 (all" in note and "split 3 (all" in note and "transfer0A0A_1_{1..7}" in note
    assert "split 0" not in note and "half0A" not in note
    with pytest.raises(Exception, match="nothing to plot"):
        figures.figure2({"netbase": numbers["half0A"]}, tmp_path / "none")


def test_plot_all_reports_bad_input_and_missing_figures(tmp_path):
    root = tmp_path / "results"
    for i, name in enumerate(["half0A", "half0B", "transfer0A0B_1_1", "transfer0A0B_1_2", "transfer-ft0A0B_1_2"]):
        accuracy_run(name, np.linspace(0.3, 0.6 - 0.01 * i, 12), np.linspace(3, 1, 12), np.linspace(3, 0.5, 12),
                     root)
    (root / "transfer0B0B_1_1").mkdir()  # rendered, not run
    write(root / "transfer0B0B_1_2" / "140403_060000_transfer0B0B.o1", "I0403 06:00:00.000000 1 x.cpp:1] Solving\n")
    messages = []
    written = figures.plot_all(root, tmp_path / "plots", log=messages.append)
    names = sorted(p.name for p in written)
    assert names == sorted(f"{base}.{ext}" for base in ("result_transfer", "result_transfer_lines",
                                                       "result_transfer_lines_notext") for ext in ("pdf", "png"))
    text = "\n".join(messages)
    assert "transfer0B0B_1_2: logs hold no training iterations" in text
    assert "no training logs yet (1 nets): transfer0B0B_1_1" in text
    assert "figure 3: skipped, needs test results of some of:" in text and "halfnatmanA" in text
    assert "reduced: skipped" in text and "reduced-0001" in text


def test_preserve_plot_when_present(tmp_path):
    root = tmp_path / "results"
    names = ["half0A", "half0B", "transfer0A0B_1_2", "transfer-ft0A0B_1_2", "preserve1_0A0B_1_2", "preserve2_0A0B_1_2",
             "preserve1_0A0B_1_3"]
    for i, name in enumerate(names):
        accuracy_run(name, np.linspace(0.3, 0.6 + 0.005 * i, 12), np.linspace(3, 1, 12), np.linspace(3, 0.5, 12), root)
    written = figures.plot_all(root, tmp_path / "plots", log=lambda text: None)
    assert {"result_preserved.pdf", "result_preserved.png"} <= {p.name for p in written}
    fam = summary.families(summary.summarize(root))
    assert set(fam["preserve1"]) == {2, 3} and set(fam["preserve2"]) == {2}


def test_cli_plot_empty_tree(tmp_path):
    (tmp_path / "results").mkdir()
    out = xfer("plot", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "plots"))
    assert out.returncode == 1 and "no figure could be drawn" in out.stderr and "figure 2: skipped" in out.stderr


def test_paper_figures_and_compare(paper_dir, tmp_path):
    demo = tmp_path / "demo"
    for name, row in demo_numbers().items():
        accuracy_run(name, np.full(12, row["top1"]), np.full(12, 0.3), np.full(12, 0.2), demo)
    out = xfer("plot", "--results", str(paper_dir / "results"), "--out", str(tmp_path / "plots"), "--compare",
               str(demo))
    assert out.returncode == 0, out.stderr
    written = {line.rsplit("/", 1)[-1] for line in out.stdout.split()}
    for base in ("result_transfer", "result_transfer_lines", "result_transfer_lines_notext",
                 "result_random_nm_combined", "result_reduced", "result_reduced_log", "compare_transfer_lines"):
        assert {f"{base}.pdf", f"{base}.png"} <= written
    assert "result_preserved.png" not in written  # the paper's tree has no preserve nets
    assert (tmp_path / "plots" / "result_transfer.png").read_bytes()[:8] == PNG


@pytest.mark.caffe
@pytest.mark.slow
def test_real_caffe_logs_end_to_end(tmp_path, tiny_render):
    """Real `caffe train` (Caffe 1.0, glog 0.6) logs of a tiny mini tree: parsed, summarised and plotted."""
    from xfer.logs import parser
    from xfer.nets import registry
    from xfer.run import train
    out = tiny_render(tmp_path / "results", ["half0A", "half0B", "transfer0A0B_1_1"])
    for name in ("half0A", "half0B", "transfer0A0B_1_1"):
        assert train.train(registry.get(name, "mini"), results=out, cpu=True, quiet=True) == 0
    log = parser.parse_net_dir(out / "half0A")
    assert log.bad_lines == 0 and log.problems() == []
    assert list(log.tests)[:2] == ["accuracy", "loss"] and log.tests["accuracy"].iter.tolist() == [0, 12, 24]
    assert log.loss.iter.tolist() == list(range(0, 25, 4)) and log.lr.value[0] == 0.001
    assert len(log.seconds_per_iter()[1]) >= 5 and (log.seconds_per_iter()[1] > 0).all()
    stamp = datetime.datetime.fromtimestamp(log.loss.time[-1], datetime.timezone.utc).replace(tzinfo=None)
    assert abs((stamp - datetime.datetime.now()).total_seconds()) < 600  # glog writes local time, as we read it
    numbers = summary.summarize(out)
    assert set(numbers) == {"half0A", "half0B", "transfer0A0B_1_1"}
    assert all(0 <= row["top1"] <= 1 and row["tests"] == 3 and row["last_iter"] == 24 for row in numbers.values())
    assert_figure(figures.figure2(numbers, tmp_path / "fig2", style="lines"))


def test_figure3_legend_names_what_the_suites_natman_halves_hold():
    from xfer.report import draw, figures, summary
    plot = figures.FIGURES["figure 3"].plots[0]
    assert figures.plot_options(plot, "paper")["natman_names"] == ("natural", "man-made")
    names = figures.plot_options(plot, "mini")["natman_names"]
    assert names == ("clothing", "footwear and bags")
    numbers = {"halfnatmanA": {"top1": 0.8}, "transfernatmanBA_1_1": {"top1": 0.79},
               "halfnatmanB": {"top1": 0.96}, "transfernatmanAB_1_1": {"top1": 0.95}}
    fig = draw.figure3_panel(summary.families(numbers), natman_names=names)
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert labels == ["transfer footwear and bags $\\to$ clothing", "transfer clothing $\\to$ footwear and bags"]
