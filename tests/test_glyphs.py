"""The glyph miniature (xfer/studies/glyphs.py and the glyphs suite): built from Debian's font packages alone,
deterministic from its seed, and every verb (images, render, run, status, summary, plot, similarity, probe,
recipe-search) on a tiny version of it (4 train / 2 val images per class, the tiny schedule) with real Caffe."""
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_OVERRIDES
from PIL import Image

from xfer.nets import registry, render
from xfer.report import summary
from xfer.studies import glyphs, recipes, tasks

SUITE = registry.suite("glyphs")
TINY = [f"--set={key}={render.override_values.text_of(value)}" for key, value in TINY_OVERRIDES.items()]


def xfer(*args, timeout=900) -> str:
    proc = subprocess.run([sys.executable, "-m", "xfer.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


def test_the_classes_are_letters_of_two_families_of_scripts_each_in_several_fonts():
    classes = glyphs.classes()
    assert len(classes) == SUITE.classes["whole"] == registry.ARCHS["glyphs"].num_classes == 200
    assert len({(c.script, c.char) for c in classes}) == 200
    for family, count in zip(glyphs.FAMILIES, (SUITE.classes["halfnatmanA"], SUITE.classes["halfnatmanB"])):
        assert sum(c.family == family for c in classes) == count
    assert glyphs.natural_classes() == tuple(range(100))  # the alphabets come first in class-id order
    for cls in classes:
        assert glyphs.MIN_FONTS <= len(cls.fonts) <= glyphs.MAX_FONTS
        assert all(ord(cls.char) in glyphs.cmap_of(path) for path in cls.fonts)  # each font draws the letter
    assert sorted(glyphs.class_folder(i, c) for i, c in enumerate(classes)) == \
        [glyphs.class_folder(i, c) for i, c in enumerate(classes)]  # folders sort in class-id order


def clean(cls) -> np.ndarray:
    """The letter in its first font, undistorted, as the net would see it (28x28)."""
    canvas = Image.new("L", (glyphs.CANVAS, glyphs.CANVAS), 0)
    glyphs.draw_letter(canvas, cls.char, cls.fonts[0])
    small = np.asarray(canvas.resize((glyphs.SIDE, glyphs.SIDE), Image.Resampling.BOX), dtype=np.float64)
    return (small - small.mean()) / (small.std() + 1e-9)


def test_no_two_classes_draw_alike():
    """Homoglyphs (Latin o, Greek ο, Cyrillic о: a correlation of 1 in one font) and letters a notch apart at 28x28
    (Thai ข/ช, 0.965) are left out: two classes that draw alike would cap the net."""
    drawn = np.stack([clean(c).ravel() for c in glyphs.classes()])
    similarity = drawn @ drawn.T / drawn.shape[1]
    np.fill_diagonal(similarity, -1)
    i, j = np.unravel_index(similarity.argmax(), similarity.shape)
    assert similarity[i, j] < 0.96, (glyphs.classes()[i], glyphs.classes()[j])


def test_the_tree_is_the_same_from_its_seed_whatever_the_workers(tmp_path):
    one = glyphs.write_image_tree(tmp_path / "one", seed=0, per_class=(2, 1), workers=1)
    glyphs.write_image_tree(tmp_path / "two", seed=0, per_class=(2, 1), workers=2)
    glyphs.write_image_tree(tmp_path / "other", seed=1, per_class=(2, 1), workers=2)
    assert one == {"train": 400, "val": 200}
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.png"))
    assert len(files) == 600
    assert all((tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes() for f in files)
    assert sum((tmp_path / "one" / f).read_bytes() != (tmp_path / "other" / f).read_bytes() for f in files) > 590
    first = np.asarray(Image.open(tmp_path / "one" / files[0]))
    assert first.shape == (28, 28) and first.dtype == np.uint8 and first.std() > 10


@pytest.mark.parametrize("scale, widths", [(0.5, (8, 16, 24, 24, 16, 64, 64, 200)),
                                           (1.5, (24, 48, 72, 72, 48, 192, 192, 200))])
def test_width_scale_widens_every_layer_but_the_classifier(scale, widths):
    applied = render.override_values.apply(registry.get("half0A", "glyphs"), {"width_scale": scale})
    assert tuple(layer.num_output for layer in applied.arch.layers) == widths  # even: conv2/4/5 are grouped
    assert render.override_values.apply(registry.get("half0A", "glyphs"), {}).arch == registry.ARCHS["glyphs"]


def test_a_missing_font_package_is_one_error_naming_the_packages(tmp_path):
    with pytest.raises(glyphs.XferError, match="letters held by") as caught:
        glyphs.classes(tmp_path)
    assert "fonts-noto-core" in caught.value.fix


def docs_commands() -> list:
    """The `xfer ... --suite glyphs` lines of docs/demo.md's glyph section, as argument lists (comments dropped)."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "demo.md").read_text()
    lines = re.findall(r"^xfer (\S+ --suite glyphs.*?)(?:\s+#.*)?$", text, re.M)
    return [shlex.split(line) for line in lines]


def tiny_args(command, out) -> list:
    """What a tiny run adds to a docs command: its own folders, 4 + 2 images per class, seed 0, the tiny schedule."""
    if command[0] == "images":
        return ["--out", out / "tree", "--per-class", "4,2", "--seeds", "0"]
    if command[0] == "render":
        return ["--out", out / "results", *TINY]
    if command[0] == "run":
        return ["--results", out / "results", "--slots", "2"]
    if "--list" in command:
        return []
    if "--table" in command:
        return ["--out", out / "search"]
    return ["--data", out / "tree" / "data", "--out", out / "search", "--slots", "2", *TINY]


def one_seed(command, out) -> list:
    """The docs' three-seed search on seed 0 alone (seed 0's nets are reused; narrow and wide add 22 tiny nets),
    and the tiny tree's data dir in place of the default one."""
    default = "~/.cache/xfer/glyphs/data-tree/data"  # as written (a shell expands it; the test replaces it)
    return [("0" if before == "--seeds" else str(out / "tree" / "data") if arg == default else arg)
            for before, arg in zip([None, *command], command)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, caffe):
    """docs/demo.md's glyph commands as written, on a tiny tree: `xfer images`, the recipe list, the one-split
    screen, the search (on seed 0) and the table. Returns the folder, the data dir, today's results (base A,
    base B, BnB, BnB+, AnB, AnB+ of seed 0, trained) and what each command printed."""
    out, said = tmp_path_factory.mktemp("glyphs"), {}
    for command in docs_commands():
        said[" ".join(command)] = xfer(*one_seed(command, out), *tiny_args(command, out))
    return out, out / "tree" / "data", out / "search" / "today" / "results", said


@pytest.mark.caffe
def test_the_docs_commands_ran(tiny):
    out, data, _, said = tiny
    assert [command.split()[0] for command in said] == ["images", "render", "run"] + ["recipe-search"] * 5
    assert str(data) in said["images --suite glyphs"]
    for base in ("half0A", "half0B"):  # rendered from the tiny data dir and trained by the docs' `xfer run`
        assert (out / "results" / base / "caffe_imagenet_train_iter_24.caffemodel").is_file(), base
        assert str(data) in str((out / "results" / base / "imagenet_train_lmdb").resolve())
    assert [line.split()[0] for line in said["recipe-search --suite glyphs --list"].splitlines()] == \
        recipes.list_names("glyphs") == ["today", "wide", "narrow", "long"]
    table = said["recipe-search --suite glyphs --table"]
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == ["today", "wide", "narrow", "long"]
    for recipe in ("today", "narrow", "wide", "long"):
        row = json.loads((out / "search" / recipe / "effects.json").read_text())
        assert row["suite"] == "glyphs" and row["seeds"] == [0], recipe


@pytest.mark.caffe
def test_images_makes_the_lists_splits_and_databases(tiny):
    out, data, _, _ = tiny
    assert len(list((out / "tree" / "images" / "train").iterdir())) == 201  # 200 classes and .complete
    idxmap = (data / "halfnatmanA_train" / "idxmap.txt").read_text().split("\n")[1:-1]
    assert [int(line.split()[0]) for line in idxmap] == list(glyphs.natural_classes())
    for name in ("half0A_train", "half0B_valid", "halfnatmanB_train", "whole_train", "reduced0002_train"):
        assert (data / name / "db.json").is_file(), name
    assert len((data / "half0B_train" / "files.txt").read_text().splitlines()) == 100 * 4


@pytest.mark.caffe
def test_recipe_search_measures_the_four_effects_on_the_glyph_suite(tiny):
    out, _, results, said = tiny
    row = json.loads((out / "search" / "today" / "effects.json").read_text())
    assert row["suite"] == "glyphs" and row["seeds"] == [0]
    assert set(row["per_seed"]["0"]) == {"base", "control", *recipes.EFFECTS}
    assert sorted(p.name for p in results.iterdir() if p.is_dir()) == sorted(recipes.net_names(0, "glyphs"))
    today = said["recipe-search --suite glyphs --table"].splitlines()[2]
    assert today.startswith("| today | ")
    numbers, _ = summary.load(results, recipes.net_names(0, "glyphs"), cache=False)
    control = 100 * (numbers["transfer-ft0A0B_1_4"]["top1"] - numbers["transfer-ft0B0B_1_4"]["top1"])
    assert row["per_seed"]["0"]["control"] == pytest.approx(control)  # AnB+ minus BnB+ at n = 4
    assert today.split("|")[-2].strip() == f"{control:+.1f}"
    assert "num_output: 200" in (results / "half0B" / "imagenet_train.prototxt").read_text()
    narrow = (out / "search" / "narrow" / "results" / "half0B" / "imagenet_train.prototxt").read_text()
    assert re.findall(r"num_output: (\d+)", narrow) == ["8", "16", "24", "24", "16", "64", "64", "200"]


@pytest.mark.caffe
def test_render_run_and_status_of_a_glyph_net(tiny):
    _, data, results, _ = tiny
    xfer("render", "--suite", "glyphs", "--out", results, "--data-dir", data, "transfer0A0B_1_2", *TINY)
    assert "fc8-new" in (results / "transfer0A0B_1_2" / "imagenet_train.prototxt").read_text()
    xfer("run", "--suite", "glyphs", "--results", results, "--slots", "1", "transfer0A0B_1_2")
    status = json.loads(xfer("status", "--suite", "glyphs", "--results", results, "--json", "transfer0A0B_1_2",
                             "half0A"))
    assert {row["net"]: row["state"] for row in status} == {"half0A": "finished", "transfer0A0B_1_2": "finished"}


@pytest.mark.caffe
def test_summary_plot_similarity_and_probe_of_the_glyph_nets(tiny, tmp_path):
    _, data, results, _ = tiny
    numbers = json.loads(xfer("summary", "--results", results, "--format", "json"))
    assert set(recipes.net_names(0, "glyphs")) <= set(numbers)
    assert all(0 <= numbers[name]["top1"] <= 1 for name in recipes.net_names(0, "glyphs"))
    figures = [line for line in xfer("plot", "--results", results, "--out", tmp_path / "plots").splitlines()
               if line.endswith(".png")]
    assert figures and all(Path(png).stat().st_size > 10_000 for png in figures)
    xfer("similarity", "half0B", "half0A", "transfer0A0B_1_7", "--suite", "glyphs", "--results", results,
         "--images", 40, "--out", tmp_path)
    cka = json.loads((tmp_path / "similarity_half0B.json").read_text())["cka"]
    assert set(cka) == {"half0A", "transfer0A0B_1_7"}
    xfer("probe", "half0A", "--data", "half0B", "--suite", "glyphs", "--results", results, "--train-images", 200,
         "--valid-images", 100, "--layers", "data,conv1,fc7", "--out", tmp_path)
    found = json.loads((tmp_path / "probe_half0A_half0B.json").read_text())
    assert found["chance"] < 0.05 and set(found["accuracy"]) == {"data", "conv1", "fc7"}  # 100 classes


def test_every_task_of_a_suite_is_known():
    for name in registry.suite_names():
        if registry.suite(name).task:
            assert tasks.of_suite(name).name == registry.suite(name).task
