"""Caffe patch 0005 (tools/caffe-patches/0005-parallel-data-transform.patch): Data and ImageData layers decode and
transform a batch on CAFFE_DATA_THREADS threads, with every image's mirror bit and crop offsets drawn in image order
before the threads start. So for one seed a batch must be byte-identical at any thread count, and to the batch of
Caffe built without the patch. Checked through pycaffe in the TRAIN phase (random crop, mirror, mean) on every data
mode the kit can feed a net: LMDB raw and encoded (JPEG), LevelDB raw, ImageData on PNG and JPEG files (shuffled:
the list ends and is reshuffled inside a batch), and a mean given as values (the transformer replicates it per
channel on its first image, the one state the threads would race on)."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.caffe

ROOT = Path(__file__).resolve().parent.parent
DUMP = Path(__file__).resolve().parent / "data_batches.py"
PATCH = "0005-parallel-data-transform.patch"
# 40 images in 5 classes, 36 wide and 32 high (crop offsets differ by axis), batches of 16: six batches read the
# databases 2.4 times round.
N_IMAGES, WIDTH, HEIGHT, CROP, BATCH, BATCHES, SEED = 40, 36, 32, 24, 16, 6, 1701

TRANSFORM = 'transform_param {{ crop_size: {crop} mirror: true {mean} }}'
DATA = """layer {{ name: "data" type: "Data" top: "data" top: "label" include {{ phase: TRAIN }}
  {transform}
  data_param {{ source: "{source}" backend: {backend} batch_size: {batch} }} }}
"""
IMAGE_DATA = """layer {{ name: "data" type: "ImageData" top: "data" top: "label" include {{ phase: TRAIN }}
  {transform}
  image_data_param {{ source: "{source}" root_folder: "{root}/" batch_size: {batch} shuffle: true }} }}
"""


def write_images(root: Path) -> list:
    """Random colour images saved as PNG and as JPEG; returns the list lines `cK/imgNN label` (no extension)."""
    rng = np.random.RandomState(0)
    lines = []
    for i in range(N_IMAGES):
        label = i % 5
        (root / f"c{label}").mkdir(exist_ok=True)
        # Smooth images (JPEG keeps them recognisable) with noise (each crop differs from its neighbours).
        base = rng.randint(0, 256, (HEIGHT // 4, WIDTH // 4, 3)).astype(np.uint8)
        pixels = np.asarray(Image.fromarray(base).resize((WIDTH, HEIGHT), Image.BILINEAR), dtype=np.int16)
        pixels = np.clip(pixels + rng.randint(-20, 21, pixels.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(root / f"c{label}" / f"img{i:02d}.png")
        Image.fromarray(pixels).save(root / f"c{label}" / f"img{i:02d}.jpg", quality=90)
        lines.append((f"c{label}/img{i:02d}", label))
    return lines


def convert(caffe_tool, root, listfile, out, *flags):
    subprocess.run([caffe_tool("convert_imageset"), *flags, f"{root}/", str(listfile), str(out)], check=True,
                   capture_output=True)


@pytest.fixture(scope="module")
def nets(caffe_tool, tmp_path_factory):
    """One data-only prototxt per mode, all on the same 40 images."""
    work = tmp_path_factory.mktemp("modes")
    root = work / "images"
    root.mkdir()
    lines = write_images(root)
    lists = {}
    for ext in ("png", "jpg"):
        lists[ext] = work / f"{ext}.txt"
        lists[ext].write_text("".join(f"{path}.{ext} {label}\n" for path, label in lines))
    convert(caffe_tool, root, lists["png"], work / "raw_lmdb", "--backend=lmdb")
    convert(caffe_tool, root, lists["png"], work / "jpeg_lmdb", "--backend=lmdb", "--encoded", "--encode_type=jpg")
    convert(caffe_tool, root, lists["png"], work / "raw_leveldb", "--backend=leveldb")
    mean = work / "mean.binaryproto"
    subprocess.run([caffe_tool("compute_image_mean"), str(work / "raw_lmdb"), str(mean)], check=True,
                   capture_output=True)
    with_file = TRANSFORM.format(crop=CROP, mean=f'mean_file: "{mean}"')
    with_values = TRANSFORM.format(crop=CROP, mean="mean_value: 104 mean_value: 117 mean_value: 123")
    layers = {
        "lmdb raw": DATA.format(transform=with_file, source=work / "raw_lmdb", backend="LMDB", batch=BATCH),
        "lmdb jpeg": DATA.format(transform=with_file, source=work / "jpeg_lmdb", backend="LMDB", batch=BATCH),
        "leveldb raw": DATA.format(transform=with_file, source=work / "raw_leveldb", backend="LEVELDB", batch=BATCH),
        "lmdb raw, mean values": DATA.format(transform=with_values, source=work / "raw_lmdb", backend="LMDB",
                                             batch=BATCH),
        "imagedata png": IMAGE_DATA.format(transform=with_file, source=lists["png"], root=root, batch=BATCH),
        "imagedata jpeg": IMAGE_DATA.format(transform=with_file, source=lists["jpg"], root=root, batch=BATCH),
    }
    paths = {}
    for name, layer in layers.items():
        paths[name] = work / (name.replace(" ", "_").replace(",", "") + ".prototxt")
        paths[name].write_text(f'name: "data_only"\n{layer}')
    return paths


def run_batches(out: Path, nets: dict, threads=None, seed=SEED, pythonpath=None, prefix=()):
    """Every net's batches from a fresh process (the patch reads CAFFE_DATA_THREADS once), and its log."""
    env = dict(os.environ, GLOG_logtostderr="1", GLOG_minloglevel="0")
    env.pop("CAFFE_DATA_THREADS", None)
    if threads is not None:
        env["CAFFE_DATA_THREADS"] = str(threads)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    proc = subprocess.run([*prefix, sys.executable, str(DUMP), str(out), str(seed), str(BATCHES),
                           *map(str, nets.values())], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with np.load(out) as arrays:
        batches = {key: arrays[key] for key in arrays.files}
    return batches, proc.stderr


def thread_counts(log: str) -> list:
    return [int(n) for n in re.findall(r"Decoding and transforming a batch on (\d+) thread", log)]


def assert_same_bytes(expected: dict, got: dict, names: list, what: str):
    keys = [k for k in expected if k != "caffe_file"]
    assert len(keys) == 2 * BATCHES * len(names)
    for key in keys:
        net, batch, blob = key.split("_")
        assert got[key].dtype == expected[key].dtype and got[key].shape == expected[key].shape, key
        assert got[key].tobytes() == expected[key].tobytes(), f"{names[int(net)]}: batch {batch} {blob} differs {what}"


@pytest.fixture(scope="module")
def one_thread(nets, tmp_path_factory):
    return run_batches(tmp_path_factory.mktemp("t1") / "batches.npz", nets, threads=1)


@pytest.mark.parametrize("threads", [2, 3])
def test_batches_are_byte_identical_at_any_thread_count(nets, one_thread, threads, tmp_path):
    expected, log1 = one_thread
    got, log = run_batches(tmp_path / "batches.npz", nets, threads=threads)
    assert thread_counts(log1) == [1] * len(nets)
    assert thread_counts(log) == [threads] * len(nets)
    assert got["0_0_data"].shape == (BATCH, 3, CROP, CROP)
    assert_same_bytes(expected, got, list(nets), f"between CAFFE_DATA_THREADS=1 and {threads}")


def test_default_thread_count_and_the_seed_matter(nets, one_thread, tmp_path):
    """Unset: min(4, usable cores). Another seed gives other crops and mirrors (so the identity above is not vacuous)
    and, for the Data layers, the same labels (their order is the database's)."""
    expected, _ = one_thread
    got, log = run_batches(tmp_path / "batches.npz", nets, seed=SEED + 1)
    assert thread_counts(log) == [min(4, len(os.sched_getaffinity(0)))] * len(nets)
    names = list(nets)
    for k, name in enumerate(names):
        for b in range(BATCHES):
            assert got[f"{k}_{b}_data"].tobytes() != expected[f"{k}_{b}_data"].tobytes(), (name, b)
            if not name.startswith("imagedata"):
                assert np.array_equal(got[f"{k}_{b}_label"], expected[f"{k}_{b}_label"]), (name, b)


@pytest.mark.skipif(not shutil.which("taskset"), reason="taskset (util-linux) is not installed")
def test_the_default_counts_the_cores_the_process_may_use(nets, one_thread, tmp_path):
    """A batch system's cpuset (or taskset) narrows the CPU affinity: one core allowed, one thread by default."""
    one = {"imagedata jpeg": nets["imagedata jpeg"]}
    got, log = run_batches(tmp_path / "batches.npz", one, prefix=("taskset", "-c", str(min(os.sched_getaffinity(0)))))
    assert thread_counts(log) == [1]
    k = list(nets).index("imagedata jpeg")
    assert all(got[f"0_{b}_data"].tobytes() == one_thread[0][f"{k}_{b}_data"].tobytes() for b in range(BATCHES))


@pytest.fixture(scope="module")
def unpatched_caffe():
    """Caffe built from the same source and patches without 0005 (cached under that patch set's key; a cold cache
    builds it once, ~3-6 min on 2 cores)."""
    proc = subprocess.run(["bash", str(ROOT / "tools" / "build_caffe.sh")], stdout=subprocess.PIPE, text=True,
                          env=dict(os.environ, PYTHON=sys.executable, CAFFE_SKIP_PATCHES=PATCH))
    assert proc.returncode == 0, "building Caffe without patch 0005 failed (the lines above name the log)"
    prefix = Path(proc.stdout.strip().splitlines()[-1])
    import json
    info = json.loads((prefix / "build-info.json").read_text())
    assert PATCH not in info["patches"] and info["patches"]
    return info


@pytest.mark.slow
def test_batches_equal_unpatched_caffes(nets, one_thread, unpatched_caffe, tmp_path):
    patched, _ = run_batches(tmp_path / "patched.npz", nets, threads=2)
    upstream, log = run_batches(tmp_path / "upstream.npz", nets, pythonpath=unpatched_caffe["pythonpath"])
    assert str(upstream["caffe_file"]).startswith(unpatched_caffe["pythonpath"] + "/")
    assert thread_counts(log) == []  # upstream's layers, which know nothing of threads
    assert_same_bytes(upstream, patched, list(nets), "between unpatched Caffe and CAFFE_DATA_THREADS=2")
    assert_same_bytes(upstream, one_thread[0], list(nets), "between unpatched Caffe and CAFFE_DATA_THREADS=1")


def test_imagedata_resizing_the_source_tree_gives_the_resized_lmdbs_batches(nets, caffe_tool, tmp_path):
    """docs/datasets.md: ImageData with new_height/new_width on the source images yields what Data yields on the
    LMDB convert_imageset resized them into (one function, ReadImageToCVMat, decodes and resizes both)."""
    work = Path(nets["lmdb raw"]).parent
    size = "resize_height=28 resize_width=30".split()
    convert(caffe_tool, work / "images", work / "jpg.txt", tmp_path / "resized_lmdb", "--backend=lmdb",
            *(f"--{flag}" for flag in size))
    transform = TRANSFORM.format(crop=CROP, mean="mean_value: 104 mean_value: 117 mean_value: 123")
    image_data = IMAGE_DATA.format(transform=transform, source=work / "jpg.txt", root=work / "images", batch=BATCH)
    layers = {"lmdb resized": DATA.format(transform=transform, source=tmp_path / "resized_lmdb", backend="LMDB",
                                          batch=BATCH),
              "imagedata resized": image_data.replace("shuffle: true", "shuffle: false new_height: 28 new_width: 30")}
    paths = {}
    for name, layer in layers.items():
        paths[name] = tmp_path / f"{name.replace(' ', '_')}.prototxt"
        paths[name].write_text(f'name: "data_only"\n{layer}')
    got, _ = run_batches(tmp_path / "resized.npz", paths, threads=2)
    for b in range(BATCHES):
        assert got[f"0_{b}_data"].tobytes() == got[f"1_{b}_data"].tobytes(), b
        assert np.array_equal(got[f"0_{b}_label"], got[f"1_{b}_label"]), b


@pytest.mark.parametrize("value", ["0", "two", "3x", "-1"])
def test_a_bad_thread_count_stops_with_one_clear_line(nets, value, tmp_path):
    env = dict(os.environ, CAFFE_DATA_THREADS=value, GLOG_logtostderr="1")
    proc = subprocess.run([sys.executable, str(DUMP), str(tmp_path / "x.npz"), "1", "1", str(nets["lmdb raw"])],
                          capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert f"CAFFE_DATA_THREADS={value} is not a whole number from 1 to 1024" in proc.stderr
    assert "unset it (min(4, usable cores))" in proc.stderr
