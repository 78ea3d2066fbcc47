"""Shared fixtures: the paper's reference files (from ../shared/paper, never copied) and the Caffe build."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAPER = Path(os.environ.get("XFER_PAPER_DIR", ROOT.parent / "shared" / "paper"))


@pytest.fixture(scope="session")
def paper_dir() -> Path:
    """The original study's logs and lists; tests that need them skip (with the reason) where it is absent."""
    if not PAPER.is_dir():
        pytest.skip(f"the paper's reference files are not at {PAPER} (set XFER_PAPER_DIR)")
    return PAPER


@pytest.fixture(scope="session")
def caffe():
    """pycaffe, imported quietly; fails (not skips) when the build is missing, since `make test` builds it."""
    from xfer import caffeenv
    return caffeenv.import_caffe()


@pytest.fixture(scope="session")
def caffe_tool():
    from xfer import caffeenv
    return caffeenv.tool


# ---- A tiny mini-suite results tree that real Caffe trains in seconds (training, runner and SLURM tests) ----------
# Grey 28x28 PNGs in class folders -> files.txt per dataset -> `xfer db` (xfer.data.databases: real LMDBs and means),
# then xfer.nets.render with a schedule of a few iterations; each test renders into its own results folder.
TINY_DATASETS = {"whole_train": 10, "whole_valid": 10, "half0A_train": 5, "half0A_valid": 5, "half0B_train": 5,
                 "half0B_valid": 5}
TINY_IMAGES_PER_CLASS = 8
# test_initialization: the tiny runs keep a test at iteration 0 (the mini recipe tests only at the end).
TINY_OVERRIDES = dict(base_lr=0.001, max_iter=24, snapshot=8, test_interval=12, test_iter=2, display=4, stepsize=1000,
                      test_initialization=True,
                      train_batch=8, val_batch=10)


def write_tiny_images(root):
    """Images near the mean whose brightness depends on the class, under root/train and root/val."""
    import numpy as np
    from PIL import Image
    rng = np.random.RandomState(0)
    for part in ("train", "val"):
        for label in range(10):
            (root / part / f"c{label}").mkdir(parents=True)
            for i in range(TINY_IMAGES_PER_CLASS):
                pixels = rng.randint(88, 104, (28, 28)).astype(np.uint8) + np.uint8(3 * label)
                Image.fromarray(pixels).save(root / part / f"c{label}" / f"i{i}.png")


def make_tiny_data(root, datasets) -> Path:
    """root/data holding {dataset: classes} as LMDBs and means (built by `xfer db`'s code) of the tiny images."""
    from xfer.data import databases
    write_tiny_images(root / "images")
    for name, classes in datasets.items():
        (root / "data" / name).mkdir(parents=True)
        lines = [f"c{label}/i{i}.png {label}\n" for label in range(classes) for i in range(TINY_IMAGES_PER_CLASS)]
        (root / "data" / name / "files.txt").write_text("".join(lines))
    databases.build_databases(root / "data", root / "images", backend="lmdb", resize=28, gray=True, jobs=1)
    return root / "data"


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory, caffe):
    """A data dir holding the datasets the half0A/half0B/whole mini nets read, built by `xfer db`'s code."""
    return make_tiny_data(tmp_path_factory.mktemp("tiny-data"), TINY_DATASETS)


@pytest.fixture(scope="session")
def tiny_render(tiny_data_dir):
    """render(out, names, **overrides) -> out, holding those mini nets rendered with the tiny schedule."""
    from xfer.nets import registry, render

    def make(out, names, force=False, **overrides):
        nets = [registry.get(name, "mini") for name in names]
        render.render(nets, out, tiny_data_dir, backend="lmdb", overrides=dict(TINY_OVERRIDES, **overrides),
                      force=force)
        return out
    return make


# ---- The paper's logs as `xfer paper` fetches them: a git repository laid out like the original, cloned over file://
def run_xfer(*args, cache, check=True):
    """`xfer ARGS` as a subprocess with the kit's cache at `cache` (and no XFER_PAPER_DIR override)."""
    env = dict(os.environ, XFER_CACHE=str(cache))
    env.pop("XFER_PAPER_DIR", None)
    return subprocess.run([sys.executable, "-m", "xfer.cli", *args], env=env, capture_output=True, text=True,
                          check=check, cwd=ROOT)


@pytest.fixture(scope="session")
def paper_repo(paper_dir, tmp_path_factory) -> Path:
    """A git repository laid out like the original one (results/<net>/*.gz), built from ../shared/paper's logs."""
    repo = tmp_path_factory.mktemp("convnet_transfer")
    shutil.copytree(paper_dir / "results", repo / "results")
    for path in repo.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the fixture's files are read-only
    run = dict(cwd=repo, check=True, capture_output=True)
    subprocess.run(["git", "init", "-q"], **run)
    subprocess.run(["git", "add", "-A"], **run)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "logs"], **run)
    return repo


@pytest.fixture(scope="session")
def fetched_cache(paper_repo, tmp_path_factory) -> Path:
    """A kit cache into which `xfer paper --from file://...` fetched the logs (a real shallow git clone)."""
    cache = tmp_path_factory.mktemp("cache")
    proc = run_xfer("paper", "--from", f"file://{paper_repo}", cache=cache)
    assert "git clone --depth 1" in proc.stdout and "354 logs of 148 nets verified" in proc.stdout
    return cache
