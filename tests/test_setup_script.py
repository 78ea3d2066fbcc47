"""tools/build_caffe.sh stops at the failing step, names its log, and leaves nothing a later run would reuse."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_build(tmp_path, source):
    env = dict(os.environ, XFER_CACHE=str(tmp_path / "cache"), CAFFE_SRC=str(source), PYTHON=sys.executable)
    return subprocess.run(["bash", str(ROOT / "tools" / "build_caffe.sh")], env=env, capture_output=True, text=True)


def test_patch_that_does_not_apply_stops_with_step_and_log(tmp_path):
    source = tmp_path / "not-caffe"
    (source / "src" / "caffe" / "util").mkdir(parents=True)
    (source / "src" / "caffe" / "util" / "io.cpp").write_text("// a file the project's patch does not fit\n")
    proc = run_build(tmp_path, source)
    assert proc.returncode != 0
    assert "step 'apply patch 0001-protobuf-3.18-SetTotalBytesLimit.patch' failed" in proc.stderr, proc.stderr
    log = proc.stderr.split("Read the log: ")[1].split()[0]
    assert Path(log).is_file() and Path(log).read_text().strip(), "the named log must hold patch's output"
    cache = tmp_path / "cache"
    assert not list(cache.glob("caffe-*/.complete")), "a failed build must never be marked complete"


def test_missing_source_is_one_clear_error(tmp_path):
    proc = run_build(tmp_path, tmp_path / "nowhere")
    assert proc.returncode != 0
    assert "CAFFE_SRC=" in proc.stderr and "neither a directory nor a file" in proc.stderr
