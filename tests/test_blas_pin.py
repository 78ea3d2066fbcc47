"""The demo's BLAS pin (xfer.caffeenv.pinned_blas_env): the rule, and that the kit's real OpenBLAS obeys it."""
import os
import subprocess

import pytest

from xfer import caffeenv
from xfer.run.backends.local import LocalRunner

AVX2 = {"avx2", "fma", "sse2"}


def test_pin_on_an_avx2_cpu():
    env, line = caffeenv.pinned_blas_env(environ={}, flags=AVX2)
    assert env == {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "1"}
    assert "Haswell kernels" in line


def test_a_value_the_user_set_wins_and_is_named():
    env, line = caffeenv.pinned_blas_env(environ={"OPENBLAS_CORETYPE": "SkylakeX"}, flags=AVX2)
    assert env == {"OPENBLAS_NUM_THREADS": "1"}
    assert "OPENBLAS_CORETYPE=SkylakeX kept" in line and "may differ" in line


def test_no_pin_without_avx2():
    env, line = caffeenv.pinned_blas_env(environ={}, flags={"sse2", "avx"})
    assert env == {} and "lacks AVX2" in line


def test_cpu_flags_reads_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert caffeenv.cpu_flags(info) == {"fpu", "sse2", "avx2", "fma"}
    assert caffeenv.cpu_flags(tmp_path / "absent") == set()


def test_the_runner_passes_the_pin_over_its_thread_share():
    runner = LocalRunner([], None, [None, None], env={"OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": "Haswell"})
    env = runner.child_env()
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["OPENBLAS_CORETYPE"] == "Haswell"


@pytest.mark.caffe
def test_the_kits_openblas_takes_the_pinned_kernels():
    env, _ = caffeenv.pinned_blas_env()
    if not env:
        pytest.skip("this CPU lacks AVX2/FMA: the demo does not pin here")
    run = dict(os.environ, **env, OPENBLAS_VERBOSE="2")
    done = subprocess.run([caffeenv.tool("caffe"), "--version"], env=run, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Core: Haswell" in done.stdout + done.stderr
