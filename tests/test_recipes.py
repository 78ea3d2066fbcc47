"""The recipe keys of `xfer render --set` (fc_width, dropout_ratio, base_iter_scale) and `xfer recipe-search` on real
Caffe nets: what it renders, trains and measures, and how it judges an effect."""
import json
import subprocess
import sys

import pytest
from conftest import TINY_OVERRIDES

from xfer.errors import XferError
from xfer.nets import registry, render
from xfer.report import summary
from xfer.studies import recipes


def solver_value(folder, key):
    line = next(ln for ln in (folder / "imagenet_solver.prototxt").read_text().splitlines()
                if ln.startswith(key + ":"))
    return int(line.split(":")[1])


def test_recipe_keys_shape_the_upper_layers_and_lengthen_only_the_bases(tmp_path, tiny_render, caffe, monkeypatch):
    out = tiny_render(tmp_path / "results", ["half0A", "transfer0A0B_1_3"], fc_width=24, dropout_ratio=0.6,
                      base_iter_scale=3)
    base, transfer = out / "half0A", out / "transfer0A0B_1_3"
    for key, value in (("max_iter", 24), ("stepsize", 1000), ("snapshot", 8), ("test_interval", 12)):
        assert solver_value(base, key) == 3 * value, key
        assert solver_value(transfer, key) == value, key
    assert (base / "caffe_imagenet_train_iter_72").is_symlink()  # the 2014-name link follows the longer budget
    for folder in (base, transfer):
        monkeypatch.chdir(folder)  # the data layer opens the folder's database link
        net = caffe.Net("imagenet_val.prototxt", caffe.TEST)
        fc6 = [k for k in net.params if k.startswith("fc6")][0]
        fc7 = [k for k in net.params if k.startswith("fc7")][0]
        assert net.params[fc6][0].data.shape[0] == 24 and net.params[fc7][0].data.shape == (24, 24)
        assert "dropout_ratio: 0.6" in (folder / "imagenet_train.prototxt").read_text()


@pytest.mark.parametrize("key, value", [("dropout_ratio", "1"), ("fc_width", "0"), ("base_iter_scale", "0.5")])
def test_recipe_keys_refuse_values_out_of_range(key, value):
    with pytest.raises(XferError, match=key):
        render.override_values.parse_assignments([f"{key}={value}"])


def test_an_effect_is_yes_only_when_it_holds_on_every_seed_and_on_enough_of_them():
    row = {"base": 90.0, "specificity": 3.0, "dip": 2.0, "recovery": -0.5, "gain": 0.2}
    three = recipes.verdict({0: row, 1: row, 2: dict(row, dip=0.1)}, {0: 1.0, 1: 1.0, 2: 1.0})
    assert three["specificity"]["yes"] and three["recovery"]["yes"]
    assert not three["dip"]["yes"] and three["dip"]["held"] == 2  # one seed under the noise: not shown
    assert not three["gain"]["yes"] and three["gain"]["held"] == 0
    one = recipes.verdict({0: row}, {0: 1.0})
    assert not recipes.verdict({0: row, 1: row, 2: row}, {0: 1.0, 1: 1.0, 2: 2.5})["dip"]["yes"]  # seed 2's noise
    assert one["specificity"]["held"] == 1 and not one["specificity"]["yes"]  # one seed is a screen, not a result
    assert recipes.MIN_SEEDS == 3


def test_noise_is_the_standard_error_of_a_difference_of_two_accuracies():
    assert recipes.noise(0.9, 5000) == pytest.approx(200 * (2 * 0.09 / 5000) ** 0.5)
    assert recipes.noise(0.9, 50000) < recipes.noise(0.9, 5000)


def test_recipe_search_trains_and_measures_the_effects(tmp_path, tiny_data_dir):
    tiny = [f"--set={key}={render.override_values.text_of(value)}" for key, value in TINY_OVERRIDES.items()]
    proc = subprocess.run([sys.executable, "-m", "xfer.cli", "recipe-search", "--recipes", "fc32", "--seeds", "0",
                           "--data", str(tiny_data_dir), "--out", str(tmp_path), "--slots", "2", *tiny],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    row = json.loads((tmp_path / "fc32" / "effects.json").read_text())
    assert row["overrides"]["fc_width"] == 32 and row["seeds"] == [0]
    results = tmp_path / "fc32" / "results"
    names = recipes.net_names(0)
    assert sorted(p.name for p in results.iterdir() if p.is_dir()) == sorted(names)
    assert len(names) == 2 + sum(len(layers) for layers in recipes.PROBES.values())
    numbers, _ = summary.load(results, names, cache=False)
    top1 = {name: 100 * numbers[name]["top1"] for name in names}
    measured = row["per_seed"]["0"]
    assert measured["base"] == pytest.approx(top1["half0B"])
    assert measured["dip"] == pytest.approx(top1["half0B"] - min(top1[f"transfer0B0B_1_{n}"] for n in (3, 4, 5)))
    assert measured["specificity"] == pytest.approx(top1["transfer0A0B_1_1"] - top1["transfer0A0B_1_7"])
    assert measured["gain"] == pytest.approx(
        sum(top1[f"transfer-ft0A0B_1_{n}"] for n in (1, 4, 7)) / 3 - top1["half0B"])
    text = (tmp_path / "recipes.md").read_text()
    assert text.splitlines()[2].startswith("| fc32 | ") and "fc_width=32" in text
    assert all(registry.get(name, "mini").family in recipes.PROBES for name in names)
    again = subprocess.run([sys.executable, "-m", "xfer.cli", "recipe-search", "--table", "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout == text  # the table of what was measured, nothing retrained


def test_recipe_search_as_docs_demo_md_lists_the_recipes():
    proc = subprocess.run([sys.executable, "-m", "xfer.cli", "recipe-search", "--list"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0
    assert [line.split()[0] for line in proc.stdout.splitlines()] == recipes.list_names()
    assert "base_iter_scale=3" in proc.stdout


def test_the_table_of_an_empty_folder_says_what_to_run(tmp_path):
    with pytest.raises(XferError, match="no recipe has been measured"):
        recipes.measured_table(tmp_path)
