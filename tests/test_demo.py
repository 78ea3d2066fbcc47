"""`xfer demo --quick` end to end on the real Fashion-MNIST with real Caffe: figure, table, frozen layers, re-run."""
import csv
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from xfer.nets import registry
from xfer.studies import demo, fashion

pytestmark = pytest.mark.caffe
QUICK_NETS = demo.net_names([0], demo.QUICK_N)


def run_demo(out, *extra):
    return subprocess.run([sys.executable, "-m", "xfer.cli", "demo", "--quick", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    if not fashion.DEBIAN_DIR.is_dir():
        pytest.fail(f"{fashion.DEBIAN_DIR} is missing: `make setup` installs dataset-fashion-mnist")
    out = tmp_path_factory.mktemp("demo")
    proc = run_demo(out)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out, proc


def test_quick_demo_draws_figure_2(quick_demo):
    out, proc = quick_demo
    for style in ("points", "lines"):
        png = out / "figures" / f"figure2_{style}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 10_000, "a figure with markers and axes is bigger than an empty canvas"
        assert str(png) in proc.stdout
        assert (out / "figures" / f"figure2_{style}.pdf").stat().st_size > 0


def test_quick_demo_draws_the_layer_by_layer_figures(quick_demo):
    out, proc = quick_demo
    for base in ("similarity_half0B", "probe_half0A_half0B"):
        png = out / "figures" / f"{base}.png"
        assert png.stat().st_size > 10_000 and str(png) in proc.stdout
        assert (out / "figures" / f"{base}.pdf").stat().st_size > 0
    cka = json.loads((out / "figures" / "similarity_half0B.json").read_text())["cka"]
    assert list(cka) == ["half0A"] + [f"transfer0{x}0B_1_{n}" for x in "AB" for n in demo.QUICK_N]
    assert [cka["transfer0A0B_1_7"][layer] for layer in registry.LAYERS[:7]] == \
        [cka["half0A"][layer] for layer in registry.LAYERS[:7]]  # AnB's frozen layers 1..7 are A's
    assert min(cka["half0A"].values()) < 0.9  # two bases trained on different classes
    found = json.loads((out / "figures" / "probe_half0A_half0B.json").read_text())
    assert found["train_images"] == 600 and found["valid_images"] == 400
    assert all(found["chance"] + 0.2 < acc <= 1 for acc in found["accuracy"].values())


def test_docs_layer_by_layer_commands_run_on_the_demo_tree(quick_demo, tmp_path):
    """The two commands of docs/figures.md as written, on this demo's tree in place of the default one."""
    out, _ = quick_demo
    text = (Path(__file__).resolve().parent.parent / "docs" / "figures.md").read_text()
    commands = re.findall(r"^xfer (similarity|probe) (.*)$", text, re.M)
    assert [verb for verb, _ in commands] == ["similarity", "probe"]
    for verb, rest in commands:
        args = [a.replace("~/.cache/xfer/demo/results", str(out / "results")).replace("plots/", str(tmp_path))
                for a in shlex.split(rest)]
        done = subprocess.run([sys.executable, "-m", "xfer.cli", verb, *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "similarity_half0B.png").is_file() and (tmp_path / "probe_half0A_half0B.png").is_file()


def test_quick_demo_table_has_every_net(quick_demo):
    out, proc = quick_demo
    rows = {row["net"]: row for row in csv.DictReader((out / "summary.csv").open())}
    assert sorted(rows) == sorted(QUICK_NETS)
    for name, row in rows.items():
        assert 0.2 < float(row["top1"]) <= 1.0, f"{name} learned nothing: {row}"
        assert int(row["last_iter"]) == registry.get(name, "mini").schedule.max_iter
    text = (out / "summary.txt").read_text()
    assert all(name in text for name in QUICK_NETS)
    for family in ("baseB", "BnB", "BnB+", "AnB", "AnB+"):
        assert f"  {family} " in text, f"the family table lacks {family}"


def test_quick_demo_bases_reach_the_target(quick_demo):
    out, _ = quick_demo
    rows = {row["net"]: row for row in csv.DictReader((out / "summary.csv").open())}
    for base in ("half0A", "half0B"):
        assert float(rows[base]["top1"]) >= 0.85, f"{base}: {rows[base]['top1']} < 0.85 (mini recipe target)"


# The README's claim, as effects rather than digits: AnB falls with n; BnB, BnB+ and AnB+ stay near base B. The
# band is what the kit states (README, docs/demo.md): the largest gap measured is +1.8 points (BnB+, seed 0),
# under 2 on every seed and BLAS kernel tried.
BAND = 0.03


def test_quick_demo_shows_the_effects_the_readme_states(quick_demo):
    out, _ = quick_demo
    top1 = {row["net"]: float(row["top1"]) for row in csv.DictReader((out / "summary.csv").open())}
    base = top1["half0B"]
    anb = [top1[f"transfer0A0B_1_{n}"] for n in demo.QUICK_N]
    assert anb == sorted(anb, reverse=True) and anb[0] - anb[-1] > 0.15, f"AnB must fall with n: {anb}"
    for prefix in ("transfer0B0B", "transfer-ft0B0B", "transfer-ft0A0B"):
        for n in demo.QUICK_N:
            got = top1[f"{prefix}_1_{n}"]
            assert abs(got - base) <= BAND, f"{prefix}_1_{n}: {got:.4f} is not within {BAND} of base B {base:.4f}"


def test_quick_demo_pins_the_blas_kernels(quick_demo):
    _, proc = quick_demo
    assert "BLAS: OpenBLAS Haswell kernels, 1 thread per net" in proc.stdout


def test_quick_demo_frozen_layers_verified(quick_demo):
    out, proc = quick_demo
    record = json.loads((out / "demo.json").read_text())
    frozen = [n for n in QUICK_NETS if registry.get(n, "mini").frozen_layers()]
    assert sorted(record["verified"]) == sorted(frozen) and len(frozen) == 2 * len(demo.QUICK_N)
    assert all(record["verified"].values()), record["verified"]
    assert f"frozen layers verified in {len(frozen)} of {len(frozen)} nets" in proc.stdout


def test_quick_demo_rerun_reuses_everything(quick_demo):
    out, _ = quick_demo
    stamps = {p: p.stat().st_mtime_ns for p in (out / "results").glob("*/*.caffemodel")}
    proc = run_demo(out)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "started on CPU" not in proc.stdout
    assert f"finished already: {len(QUICK_NETS)} nets" in proc.stdout
    assert "xfer db: up to date" in proc.stdout
    assert stamps == {p: p.stat().st_mtime_ns for p in (out / "results").glob("*/*.caffemodel")}


def test_demo_rejects_unknown_seed(tmp_path):
    proc = run_demo(tmp_path, "--seeds", "7")
    assert proc.returncode == 2
    assert "seeds 0..3" in proc.stderr
    assert not (tmp_path / "images").exists(), "bad arguments must be caught before any work"


def test_changed_recipe_needs_force_and_retrains_only_that_net(quick_demo):
    out, _ = quick_demo
    solver = out / "results" / "transfer0A0B_1_7" / "imagenet_solver.prototxt"
    solver.write_text(solver.read_text().replace("max_iter: 1000", "max_iter: 900"))
    proc = run_demo(out)
    assert proc.returncode == 2 and "--force" in proc.stderr and "imagenet_solver.prototxt" in proc.stderr
    proc = run_demo(out, "--force")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "the recipe of transfer0A0B_1_7 changed" in proc.stdout
    assert proc.stdout.count("started on CPU") == 1 and "transfer0A0B_1_7: started on CPU" in proc.stdout
    assert "max_iter: 1000" in solver.read_text()
