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


def cmake_project(folder, broken=False):
    """A small real cmake project: two libraries and a program (one source does not compile when `broken`)."""
    folder.mkdir()
    for i in range(1, 7):
        (folder / f"f{i}.c").write_text(f"int f{i}(void) {{ return {i}; }}\n" if not (broken and i == 6)
                                        else "int f6(void) { return }\n")
    (folder / "m.c").write_text("int main(void) { return 0; }\n")
    (folder / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.10)\nproject(t C)\nadd_library(a STATIC f1.c f2.c f3.c)\n"
        "add_library(b STATIC f4.c f5.c f6.c)\nadd_executable(m m.c)\ntarget_link_libraries(m a b)\n")
    subprocess.run(["cmake", "-S", str(folder), "-B", str(folder / "obj")], check=True, capture_output=True)
    return folder / "obj"


def compile_with_progress(obj, log):
    """with_progress as build_caffe.sh runs it: errexit, pipefail and an ERR trap that names the step."""
    script = ('set -Eeuo pipefail; trap \'echo "step $STEP failed" >&2\' ERR; source "$ROOT/tools/build_progress.sh"; '
              'STEP="compile (make -j2)"; with_progress make -C "$OBJ" -j2')
    env = dict(os.environ, ROOT=str(ROOT), LOG=str(log), OBJ=str(obj))
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env)


def test_compile_prints_the_builds_percent_and_elapsed_time(tmp_path):
    proc = compile_with_progress(cmake_project(tmp_path / "ok"), tmp_path / "make.log")
    assert proc.returncode == 0, proc.stderr
    shown = [int(line.split(":")[1].split("%")[0]) for line in proc.stderr.splitlines() if "% (" in line]
    assert shown and shown == sorted(shown) and shown[-1] == 100, proc.stderr
    assert "elapsed)" in proc.stderr and "compile (make -j2): done in 0m" in proc.stderr
    assert "Built target m" in (tmp_path / "make.log").read_text()  # make's own output goes to the log only
    assert "Built target" not in proc.stderr + proc.stdout


def test_a_failed_compile_still_fails_the_step(tmp_path):
    proc = compile_with_progress(cmake_project(tmp_path / "bad", broken=True), tmp_path / "make.log")
    assert proc.returncode != 0 and "step compile (make -j2) failed" in proc.stderr
    assert "f6.c" in (tmp_path / "make.log").read_text()
