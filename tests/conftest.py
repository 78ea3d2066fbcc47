"""Shared fixtures: the paper's reference files (from ../shared/paper, never copied) and the Caffe build."""
import os
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
# Real LMDBs of Datum records (the format convert_imageset writes) and a real mean.binaryproto, rendered by
# xfer.render with a schedule of a few iterations; each test gets its own results folder.
TINY_DATASETS = {"whole_train": 10, "whole_valid": 10, "half0A_train": 5, "half0A_valid": 5, "half0B_train": 5, "half0B_valid": 5}
TINY_OVERRIDES = dict(base_lr=0.001, max_iter=24, snapshot=8, test_interval=12, test_iter=2, display=4, stepsize=1000,
                      train_batch=8, val_batch=10)


def write_tiny_lmdb(path, n_images, n_classes, seed, caffe_pb2):
    """Grey 28x28 images near the mean whose brightness depends on the class, as Datum records keyed like convert_imageset's."""
    import lmdb
    import numpy as np
    rng = np.random.RandomState(seed)
    path.mkdir(parents=True)
    with lmdb.open(str(path), map_size=1 << 26) as env, env.begin(write=True) as txn:
        for i in range(n_images):
            label = i % n_classes
            pixels = rng.randint(88, 104, (1, 28, 28)).astype(np.uint8) + np.uint8(3 * label)
            datum = caffe_pb2.Datum(channels=1, height=28, width=28, data=pixels.tobytes(), label=label)
            txn.put(f"{i:08d}_img{i}.png".encode(), datum.SerializeToString())


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory, caffe):
    """A data dir with the datasets half0A/half0B nets read, 40 images each, and whole_train's mean."""
    import numpy as np
    pb2 = caffe.proto.caffe_pb2
    root = tmp_path_factory.mktemp("tiny-data")
    for seed, (name, classes) in enumerate(TINY_DATASETS.items()):
        write_tiny_lmdb(root / name / "lmdb", 40, classes, seed, pb2)
    mean = pb2.BlobProto(num=1, channels=1, height=28, width=28)
    mean.data.extend(np.full(28 * 28, 100.0, dtype=np.float32))
    (root / "whole_train" / "mean.binaryproto").write_bytes(mean.SerializeToString())
    return root


@pytest.fixture(scope="session")
def tiny_render(tiny_data_dir):
    """render(out, names, **overrides) -> out, holding those mini nets rendered with the tiny schedule."""
    from xfer import registry, render

    def make(out, names, **overrides):
        nets = [registry.get(name, "mini") for name in names]
        render.render(nets, out, tiny_data_dir, backend="lmdb", overrides=dict(TINY_OVERRIDES, **overrides))
        return out
    return make
