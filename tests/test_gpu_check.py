"""tools/gpu_check.sh as far as a machine without a GPU lets it run: its inputs are made, a CUDA build is checked
against the kit's patch set, and at the GPU step it stops with exit 3, saying it needs a GPU, in the report too."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "gpu_check.sh"


def has_gpu() -> bool:
    if not shutil.which("nvidia-smi"):
        return False
    proc = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True)
    return proc.returncode == 0 and proc.stdout.startswith("GPU ")


pytestmark = pytest.mark.skipif(has_gpu(), reason="this machine has a GPU: there tools/gpu_check.sh runs in full")


def run_check(tmp_path, **env):
    report = tmp_path / "report.md"
    proc = subprocess.run(["bash", str(SCRIPT), "--report", str(report), "--work", str(tmp_path / "work")],
                          capture_output=True, text=True, env=dict(os.environ, PYTHON=sys.executable, **env),
                          timeout=120)
    return proc, report.read_text()


def rows(report: str) -> dict:
    """{step: status} from the report's table."""
    out = {}
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("step", "---"):
            out[cells[0]] = cells[1]
    return out


def test_without_a_gpu_it_stops_at_the_gpu_step_with_exit_3(tmp_path, caffe):
    proc, report = run_check(tmp_path)
    assert proc.returncode == 3, proc.stderr
    assert "gpu_check: needs a GPU: " in proc.stderr
    assert rows(report) == {"inputs": "ok", "gpu": "FAILED (exit 1)"}
    assert "Stopped: needs a GPU" in report and "nothing after it did" in report
    # The inputs it made: the paper's CaffeNet as it is, and the same net with DummyData of the same shapes.
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format
    work = tmp_path / "work"
    lmdb = text_format.Merge((work / "caffenet_lmdb.prototxt").read_text(), caffe_pb2.NetParameter())
    dummy = text_format.Merge((work / "caffenet_dummy.prototxt").read_text(), caffe_pb2.NetParameter())
    assert lmdb.layer[0].type == "Data" and lmdb.layer[0].data_param.batch_size == 256
    assert dummy.layer[0].type == "DummyData"
    assert [list(s.dim) for s in dummy.layer[0].dummy_data_param.shape] == [[256, 3, 227, 227], [256]]
    assert [layer.name for layer in dummy.layer[1:]] == [layer.name for layer in lmdb.layer[1:]]
    assert dummy.layer[-1].type == "SoftmaxWithLoss"


def test_a_cpu_build_is_refused_as_the_cuda_build(tmp_path):
    record = json.loads((ROOT / ".venv" / "caffe-build.json").read_text())
    proc, report = run_check(tmp_path, CAFFE_CUDA_PREFIX=record["prefix"])
    assert proc.returncode == 1
    assert rows(report)["build"] == "FAILED (exit 1)"
    assert "not a CUDA build (cuda: false); build it with CUDA=1 tools/build_caffe.sh" in report


def test_a_cuda_build_of_another_patch_set_is_refused(tmp_path):
    prefix = tmp_path / "caffe-old"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "caffe").write_text("#!/bin/sh\n")
    (prefix / "bin" / "caffe").chmod(0o755)
    (prefix / "build-info.json").write_text(json.dumps({"cuda": True, "key": "0", "patches": ["0001-x.patch"]}))
    proc, report = run_check(tmp_path, CAFFE_CUDA_PREFIX=str(prefix))
    assert proc.returncode == 1
    assert "built with patches ['0001-x.patch'], the kit has [" in report
    said = (tmp_path / "work" / "build.log").read_text()  # the row keeps 300 characters; the log all of it
    assert "'0005-parallel-data-transform.patch'" in said and "'cuda/0001-" in said
