"""`xfer summary`: the paper's measures per net, families by layer n, the CLI formats, bad input per net, and the
paper's own numbers (base nets ~0.625 top-1; AnB at n=7 far below base; AnB+ above base)."""
import csv
import io
import json

import numpy as np
import pytest

from helpers import START, accuracy_run, run_2014, write, xfer
from xfer.report import summary
from xfer.errors import XferError

@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XFER_CACHE", str(tmp_path / "cache"))


@pytest.fixture()
def tree(tmp_path):
    rng = np.random.RandomState(3)
    root = tmp_path / "results"
    expected = {}
    for name in ("half0A", "half0B", "transfer0A0B_1_3", "transfer-ft0A0B_1_3", "transfer0B0B_1_3"):
        accs = np.round(rng.uniform(0.1, 0.7, 25), 4)
        losses = np.round(rng.uniform(1, 5, 25), 4)
        train = np.round(rng.uniform(0.2, 3, 25), 4)
        accuracy_run(name, accs, losses, train, root)
        expected[name] = {"top1": np.sort(accs)[-10:].mean(), "valid_loss": np.sort(losses)[:10].mean(),
                          "train_loss": np.sort(train)[:10].mean(), "tests": 25, "last_iter": 25000}
    (root / "half1A").mkdir()  # rendered, never run
    write(root / "half1B" / "140403_060000_half1B.o1", run_2014(START, 20, 400, lambda it: "6.5"))  # crashed early
    return root, expected


def test_measures_match_the_paper_definition(tree):
    root, expected = tree
    numbers = summary.summarize(root)
    assert set(numbers) == set(expected) | {"half1B"}
    for name, want in expected.items():
        got = numbers[name]
        assert set(got) == set(summary.KEYS)
        for key in ("top1", "valid_loss", "train_loss"):
            assert got[key] == pytest.approx(want[key], abs=1e-12)
        assert (got["tests"], got["last_iter"]) == (want["tests"], want["last_iter"])
    assert numbers["half1B"] == {"top1": None, "valid_loss": None, "train_loss": 6.5, "tests": 0, "last_iter": 400}


def test_families_by_layer(tree):
    root, expected = tree
    fam = summary.families(summary.summarize(root))
    assert fam["baseB"][0]["count"] == 2
    assert fam["baseB"][0]["mean"] == pytest.approx((expected["half0A"]["top1"] + expected["half0B"]["top1"]) / 2)
    assert fam["AnB"][3]["nets"] == ["transfer0A0B_1_3"] and fam["AnB+"][3]["count"] == 1
    assert fam["BnB"][3]["values"] == [pytest.approx(expected["transfer0B0B_1_3"]["top1"])]
    assert summary.classify("transfernatmanAB_1_4") == ("natman:man-made", 4)
    assert summary.classify("halfnatmanA") == ("natman:natural", 0)
    assert summary.classify("reduced-0050") == ("reduced", 50)
    assert summary.classify("nolearn_1_2") == ("random", 2) and summary.classify("not-a-net") is None


def test_cli_formats_and_problems(tree):
    root, expected = tree
    out = xfer("summary", "--results", str(root), "--format", "json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["half0A"]["top1"] == pytest.approx(expected["half0A"]["top1"])
    assert all(set(row) == set(summary.KEYS) for row in data.values())
    assert "half1B: no test yet (trained to iteration 400)" in out.stderr
    assert "no training logs yet (1 nets): half1A" in out.stderr
    rows = list(csv.DictReader(io.StringIO(xfer("summary", "--results", str(root), "--format", "csv").stdout)))
    assert [r["net"] for r in rows][:2] == ["half0A", "half0B"] and rows[0]["tests"] == "25"
    table = xfer("summary", "--results", str(root), "--families", "half*").stdout
    assert "half0A" in table and "transfer0A0B_1_3" not in table and "baseB" in table


def test_bad_results_dir(tmp_path):
    with pytest.raises(XferError, match="no such results tree"):
        summary.summarize(tmp_path / "nowhere")
    out = xfer("summary", "--results", str(tmp_path / "nowhere"))
    assert out.returncode == 2 and "fix:" in out.stderr
    (tmp_path / "empty").mkdir()
    out = xfer("summary", "--results", str(tmp_path / "empty"))
    assert out.returncode == 0 and "no training logs yet in" in out.stdout and "xfer paper" in out.stdout


def test_paper_numbers(paper_dir, tmp_path_factory, monkeypatch):
    monkeypatch.setenv("XFER_CACHE", str(tmp_path_factory.getbasetemp() / "xfer-cache"))  # shared with the others
    numbers = summary.summarize(paper_dir / "results")
    assert len(numbers) == 148
    fam = summary.families(numbers)
    base = fam["baseB"][0]
    assert base["count"] == 8 and base["mean"] == pytest.approx(0.625, abs=0.002)
    assert fam["AnB"][7]["mean"] < base["mean"] - 0.05  # representation specificity at the top
    assert all(s["mean"] > base["mean"] for s in fam["AnB+"].values())  # transfer + fine-tuning generalises
    assert min(s["mean"] for s in fam["BnB"].values()) == fam["BnB"][5]["mean"] < base["mean"] - 0.02  # co-adaptation
    assert fam["natman:natural"][0]["mean"] > fam["natman:man-made"][0]["mean"]
    assert fam["random"][3]["mean"] < 0.01 and fam["reduced"][1300]["mean"] > fam["reduced"][250]["mean"]
