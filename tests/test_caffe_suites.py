"""Caffe's own test suites against the kit's patched build: the C++ gtest suite (tools/caffe_tests.py, the binary
built once by tools/build_caffe_tests.sh, ~10 min cold on 2 cores), pycaffe's unittests (tools/pycaffe_tests.sh),
and pycaffe's net drawer (caffe.draw / draw_net.py with pydot and graphviz) on a net the kit renders."""
import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.caffe

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)


def load_tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


caffe_tests = load_tool("caffe_tests")


@pytest.fixture(scope="session")
def record():
    return caffe_tests.load_record(VENV)


@pytest.fixture(scope="session")
def tests_dir():
    """The cached folder with Caffe's test binary (built here on the first run of a machine)."""
    return caffe_tests.build_binary(VENV)


@pytest.fixture(scope="session")
def env(record):
    return caffe_tests.suite_env(record["prefix"])


@pytest.mark.slow
def test_gtest_suite_passes_every_selected_test_against_the_kits_libcaffe(tmp_path, record, tests_dir):
    """`make caffe-tests` as docs/setup.md says (its warm `make setup` included)."""
    out = tmp_path / "summary.json"
    proc = subprocess.run(["make", "-s", "-C", str(ROOT), "caffe-tests", f"CAFFE_TESTS_ARGS=--json {out}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert summary["failed"] == 0 and summary["failures"] == []
    # Every test the filter selects reported a result: none lost to a crash or an early exit.
    assert summary["passed"] == summary["selected"] > 0
    assert summary["libcaffe"].startswith(record["prefix"] + "/")
    assert summary["filter"].startswith("-*GPU*")
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(f"caffe gtest: {summary['passed']} passed, 0 failed, {summary['disabled']} disabled")


def test_more_gtest_arguments_narrow_the_run(tests_dir, env):
    """docs/setup.md's example: one test case by a second filter; every IOTest test, nothing else."""
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "caffe_tests.py"), "--venv", str(VENV), "--",
                           "--gtest_filter=IOTest.*"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    expected = caffe_tests.list_tests(tests_dir / "bin" / "test.testbin", tests_dir / "src", env, "IOTest.*")
    assert len(expected) > 1
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(f"caffe gtest: {len(expected)} passed, 0 failed, 0 disabled,")
    assert " in 1 test cases," in last


def test_second_build_call_uses_the_cache(tests_dir):
    binary = tests_dir / "bin" / "test.testbin"
    before = binary.stat().st_mtime_ns
    proc = subprocess.run(["bash", str(ROOT / "tools" / "build_caffe_tests.sh")], capture_output=True, text=True,
                          env=dict(os.environ, VENV=str(VENV)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(tests_dir)
    assert "cached" in proc.stderr and "compile" not in proc.stderr
    assert binary.stat().st_mtime_ns == before
    assert tests_dir.name.endswith(json.loads((tests_dir / "build-info.json").read_text())["key"])


def run_one(tests_dir, env, cwd, tmp_path, name):
    xml = tmp_path / f"{cwd.name}.xml"
    status = caffe_tests.run_binary(tests_dir / "bin" / "test.testbin", cwd, env, name, xml, [])
    return status, caffe_tests.summarize(caffe_tests.count_cases(xml), 0)


def test_a_failing_caffe_test_is_counted_and_named(tmp_path, tests_dir, env):
    """IOTest reads examples/images/cat.jpg relative to the working directory: from the source root it passes,
    from anywhere else it fails, and the report must say so (the suite's clean run never exercises this path)."""
    name = "IOTest.TestReadImageToDatum"
    status, good = run_one(tests_dir, env, tests_dir / "src", tmp_path, name)
    assert status == 0 and (good["passed"], good["failed"]) == (1, 0)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    status, bad = run_one(tests_dir, env, elsewhere, tmp_path, name)
    assert status != 0 and (bad["passed"], bad["failed"]) == (0, 1)
    assert bad["failures"] == [name]
    assert bad["filtered"] > 1000  # the rest of the binary's tests are listed as not run, not as passed


def test_known_failures_file_is_valid_and_every_entry_names_a_test(tests_dir, env):
    known = caffe_tests.read_known_failures()
    caffe_tests.check_known_failures(tests_dir / "bin" / "test.testbin", tests_dir / "src", env, known)
    assert all(reason for _, reason in known)
    with pytest.raises(caffe_tests.SuiteError, match="matches no test"):
        caffe_tests.check_known_failures(tests_dir / "bin" / "test.testbin", tests_dir / "src", env,
                                         [("NoSuchCase.NoSuchTest", "stale")])


def test_a_known_failure_without_a_reason_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "known.txt"
    path.write_text("# header\nIOTest.TestReadImageToDatum  # fails upstream: see issue\nNetTest.TestReshape\n")
    with pytest.raises(caffe_tests.SuiteError, match=re.escape(f"{path}:3:")):
        caffe_tests.read_known_failures(path)
    path.write_text("IOTest.TestReadImageToDatum  # fails upstream: see issue\n")
    known = caffe_tests.read_known_failures(path)
    assert known == [("IOTest.TestReadImageToDatum", "fails upstream: see issue")]
    assert caffe_tests.gtest_filter(known) == "-*GPU*:IOTest.TestReadImageToDatum"


def count_test_methods(test_dir: Path) -> int:
    """Test methods in pycaffe's unittest files, counted from their source."""
    count = 0
    for path in test_dir.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                count += sum(isinstance(f, ast.FunctionDef) and f.name.startswith("test") for f in node.body)
    return count


@pytest.mark.slow
def test_pycaffe_unittest_suite_passes_with_the_drawing_test(record):
    proc = subprocess.run(["make", "-s", "-C", str(ROOT), "pycaffe-tests"], capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    ran = int(re.search(r"^Ran (\d+) tests? in", out, re.M).group(1))
    assert ran == count_test_methods(Path(record["source_dir"]) / "python" / "caffe" / "test") > 0
    assert re.search(r"^OK$", out, re.M)
    assert re.search(r"test_draw_net \(test_draw\.TestDraw\.test_draw_net\) \.\.\. ok", out)
    assert f"{record['pythonpath']}/caffe/__init__.py" in out  # the kit's pycaffe, not the source's


@pytest.fixture(scope="module")
def rendered_net(tmp_path_factory):
    """A mini-suite net as `xfer render` writes it (its data links may dangle: drawing reads only the prototxt)."""
    out = tmp_path_factory.mktemp("render")
    subprocess.run([str(VENV / "bin" / "xfer"), "render", "--suite", "mini", "--out", str(out),
                    "--data-dir", str(out / "data"), "half0A"], check=True, capture_output=True)
    return out / "half0A" / "imagenet_train.prototxt"


def layer_names(prototxt: Path) -> list:
    return re.findall(r'^\s*name:\s*"([^"]+)"', prototxt.read_text(), re.M)[1:]  # the first is the net's


@pytest.mark.parametrize("suite", ["paper", "mini"])
def test_draw_net_renders_a_kit_net_to_png(suite, rendered_net, tmp_path):
    """docs/networks.md's commands: the paper's committed results/half0A and a mini net that `xfer render` wrote."""
    prototxt = ROOT / "results" / "half0A" / "imagenet_train.prototxt" if suite == "paper" else rendered_net
    png = tmp_path / "half0A.png"
    proc = subprocess.run([str(VENV / "bin" / "draw_net"), "--rankdir", "TB", "--phase", "TRAIN", str(prototxt),
                           str(png)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3)
    assert height > width > 100  # top to bottom: a tall picture
    # The drawer colours layers by type (convolution, pooling, inner product, ...): more than a blank canvas.
    assert len(np.unique(pixels, axis=0)) > 50


def test_caffe_draw_labels_every_layer_of_a_kit_net(rendered_net, caffe):
    from caffe import draw
    from caffe.proto import caffe_pb2
    from google.protobuf import text_format
    net = text_format.Merge(rendered_net.read_text(), caffe_pb2.NetParameter())
    # Top to bottom: the drawer puts a layer's name and type on one line ("conv1 (Convolution) ...").
    svg = draw.draw_net(net, "TB", ext="svg").decode()
    names = layer_names(rendered_net)
    assert {"conv1", "conv5", "fc8", "loss"} <= set(names)
    missing = [n for n in names if f"{n} (" not in svg]
    assert not missing, f"layers not drawn: {missing}"
