"""The foundation: the real Caffe binaries and pycaffe that `make setup` builds, exercised end to end."""
import json
import os
import re
import subprocess
import sys

import lmdb
import numpy as np
import plyvel
import pytest
from PIL import Image

pytestmark = pytest.mark.caffe

N_IMAGES, SIZE = 12, 10

NET = """
name: "tiny"
layer { name: "data" type: "Data" top: "data" top: "label"
  data_param { source: "{db}" backend: LMDB batch_size: 4 }
  transform_param { scale: 0.00390625 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc8" type: "InnerProduct" bottom: "conv1" top: "fc8"
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc8" bottom: "label" top: "loss" }
"""

SOLVER = """
net: "net.prototxt"
base_lr: 0.01
lr_policy: "fixed"
momentum: 0.9
max_iter: {max_iter}
display: 1
snapshot: 4
snapshot_prefix: "tiny"
solver_mode: CPU
random_seed: 1
"""


@pytest.fixture(scope="module")
def image_list(tmp_path_factory):
    """A few generated colour images in class folders and their Caffe list (`path label`)."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.RandomState(0)
    lines = []
    for i in range(N_IMAGES):
        label = i % 3
        (root / f"c{label}").mkdir(exist_ok=True)
        rel = f"c{label}/img{i:02d}.png"
        Image.fromarray(rng.randint(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(root / rel)
        lines.append(f"{rel} {label}")
    listfile = root / "files.txt"
    listfile.write_text("\n".join(lines) + "\n")
    return root, listfile, lines


def convert(caffe_tool, image_list, out, backend):
    root, listfile, _ = image_list
    subprocess.run([caffe_tool("convert_imageset"), f"--backend={backend}", str(root) + "/", str(listfile), str(out)],
                   check=True, capture_output=True)


def read_lmdb(path):
    with lmdb.open(str(path), readonly=True, lock=False) as env, env.begin() as txn:
        return list(txn.cursor())


@pytest.fixture(scope="module")
def lmdb_db(caffe_tool, image_list, tmp_path_factory):
    out = tmp_path_factory.mktemp("db") / "train_lmdb"
    convert(caffe_tool, image_list, out, "lmdb")
    return out


def test_doctor_reports_every_tool_and_exits_zero():
    proc = subprocess.run([sys.executable, "-m", "xfer.cli", "doctor"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    for name in ("caffe", "convert_imageset", "compute_image_mean", "upgrade_net_proto_text", "pycaffe", "numpy"):
        assert re.search(rf"^{name}\s+\S", proc.stdout, re.M), f"doctor does not report {name}:\n{proc.stdout}"


def test_convert_imageset_writes_lmdb_records(caffe, lmdb_db, image_list):
    records = read_lmdb(lmdb_db)
    _, _, lines = image_list
    assert [k.decode() for k, _ in records] == [f"{i:08d}_{line.split()[0]}" for i, line in enumerate(lines)]
    datum = caffe.proto.caffe_pb2.Datum.FromString(records[0][1])
    assert (datum.channels, datum.height, datum.width, datum.label) == (3, SIZE, SIZE, 0)
    expected = np.asarray(Image.open(image_list[0] / lines[0].split()[0]))[:, :, ::-1].transpose(2, 0, 1)  # BGR, CHW
    assert np.array_equal(caffe.io.datum_to_array(datum), expected)


def test_convert_imageset_writes_leveldb(caffe, caffe_tool, image_list, tmp_path):
    convert(caffe_tool, image_list, tmp_path / "db_leveldb", "leveldb")
    db = plyvel.DB(str(tmp_path / "db_leveldb"))
    try:
        values = [v for _, v in db]
    finally:
        db.close()
    assert len(values) == N_IMAGES
    assert [caffe.proto.caffe_pb2.Datum.FromString(v).label for v in values] == [i % 3 for i in range(N_IMAGES)]


def test_compute_image_mean_matches_numpy(caffe, caffe_tool, lmdb_db, tmp_path):
    mean_file = tmp_path / "mean.binaryproto"
    subprocess.run([caffe_tool("compute_image_mean"), "--backend=lmdb", str(lmdb_db), str(mean_file)],
                   check=True, capture_output=True)
    blob = caffe.proto.caffe_pb2.BlobProto.FromString(mean_file.read_bytes())
    mean = caffe.io.blobproto_to_array(blob)
    images = [caffe.io.datum_to_array(caffe.proto.caffe_pb2.Datum.FromString(v)) for _, v in read_lmdb(lmdb_db)]
    assert mean.shape == (1, 3, SIZE, SIZE)
    np.testing.assert_allclose(mean[0], np.mean(images, axis=0), rtol=1e-5)


def write_tiny_solver(folder, db, max_iter):
    (folder / "net.prototxt").write_text(NET.replace("{db}", str(db)))
    (folder / "solver.prototxt").write_text(SOLVER.replace("{max_iter}", str(max_iter)))


def caffe_train(caffe_tool, folder, *extra):
    return subprocess.run([caffe_tool("caffe"), "train", "-solver", "solver.prototxt", *extra], cwd=folder,
                          capture_output=True, text=True, env={"GLOG_logtostderr": "1", "PATH": "/usr/bin:/bin"})


@pytest.fixture(scope="module")
def trained(caffe_tool, lmdb_db, tmp_path_factory):
    folder = tmp_path_factory.mktemp("train")
    write_tiny_solver(folder, lmdb_db, max_iter=8)
    proc = caffe_train(caffe_tool, folder)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder, proc.stderr


def test_caffe_train_writes_snapshots(trained):
    folder, log = trained
    for it in (4, 8):
        assert (folder / f"tiny_iter_{it}.caffemodel").stat().st_size > 0
        assert (folder / f"tiny_iter_{it}.solverstate").stat().st_size > 0
    assert "Optimization Done." in log


def test_pycaffe_loads_snapshot_with_right_shapes(caffe, trained):
    folder, _ = trained
    net = caffe.Net(str(folder / "net.prototxt"), str(folder / "tiny_iter_8.caffemodel"), caffe.TEST)
    assert net.params["conv1"][0].data.shape == (4, 3, 3, 3)
    assert net.params["fc8"][0].data.shape == (3, 4 * (SIZE - 2) ** 2)
    assert np.abs(net.params["fc8"][0].data).sum() > 0


def test_resume_from_solverstate_continues_at_its_iteration(caffe, caffe_tool, trained, tmp_path):
    folder, _ = trained
    for f in folder.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "solver.prototxt").write_text(SOLVER.replace("{max_iter}", "12"))
    proc = caffe_train(caffe_tool, tmp_path, "-snapshot", "tiny_iter_8.solverstate")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming from tiny_iter_8.solverstate" in proc.stderr
    iterations = [int(i) for i in re.findall(r"Iteration (\d+)\b.*, loss = ", proc.stderr)]
    assert iterations[0] == 8 and iterations[-1] >= 11, iterations
    state = caffe.proto.caffe_pb2.SolverState.FromString((tmp_path / "tiny_iter_12.solverstate").read_bytes())
    assert state.iter == 12


def test_xfer_caffe_prefix_brings_its_own_pycaffe(tmp_path):
    """XFER_CAFFE_PREFIX points the tools at another build (a dev build, the CUDA build of tools/gpu_check.sh); pycaffe
    must then come from that build too, not from the venv's .pth (bench_datalayer once timed the linked build's
    layer on databases the other build wrote). A prefix without pycaffe leaves the linked one."""
    from xfer import caffeenv
    linked = caffeenv.prefix()
    other = tmp_path / "other-build"
    (other / "lib" / "python3").mkdir(parents=True)
    (other / "lib" / "python3" / "dist-packages").symlink_to(linked / "lib" / "python3" / "dist-packages")
    record = json.loads((linked / "build-info.json").read_text())
    record["pythonpath"] = str(other / "lib" / "python3" / "dist-packages")
    (other / "build-info.json").write_text(json.dumps(record))
    probe = "from xfer import caffeenv; print(caffeenv.import_caffe().__file__)"
    for prefix, expect in ((other, other), (tmp_path / "no-pycaffe", linked)):
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                              env={**os.environ, "XFER_CAFFE_PREFIX": str(prefix)})
        module = done.stdout.strip()
        assert module.startswith(str(expect / "lib" / "python3" / "dist-packages")), (prefix, module)
