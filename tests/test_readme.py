"""The README's commands as written, in a shell that did `source .venv/bin/activate`, from the repository root.

Each test takes its command line from README.md itself (so an edit of the README that breaks a command breaks a
test), runs it through bash as a newcomer would type it, and checks what it must have done. `make demo` writes
where the README says, the kit's own cache (~/.cache/xfer/demo), and reuses it when it is there.
"""
import csv
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from xfer import caffeenv
from xfer.studies import demo
from xfer.nets import registry

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def readme_command(start: str) -> str:
    """The README's command line that starts with `start`, without its comment."""
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            if line.startswith(start):
                return line.split("  #")[0].strip()
    raise AssertionError(f"README.md shows no command starting with {start!r}")


def type_in(command: str, env=None, timeout=900) -> subprocess.CompletedProcess:
    """`command` as typed in a shell of the repository root after `source .venv/bin/activate`."""
    assert "source .venv/bin/activate" in README
    return subprocess.run(["bash", "-c", f"source .venv/bin/activate && {command}"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_the_readme_activates_the_venv_before_the_first_xfer_command():
    first_xfer = min(m.start() for m in re.finditer(r"^xfer ", README, re.M))
    assert README.index("source .venv/bin/activate") < first_xfer


def test_xfer_nets_json():
    done = type_in(readme_command("xfer nets --json"))
    assert done.returncode == 0, done.stderr
    nets = json.loads(done.stdout)
    assert len(nets) == 170 and {n["name"] for n in nets} == {n.name for n in registry.nets("paper")}


def test_xfer_run_gpus_dry_run_prints_the_plan_bases_first():
    command = readme_command("xfer run --gpus 0,1 --dry-run")
    done = type_in(command)
    assert done.returncode == 0, done.stderr
    trained = re.findall(r"^train\s+(\S+)", done.stdout, re.M)
    assert len(trained) == 170 and trained.index("half0A") < trained.index("transfer0A0B_1_3")
    assert not list((ROOT / "results").glob("*/*.caffemodel")), "a dry run trains nothing"


@pytest.mark.caffe
@pytest.mark.slow
def test_make_demo_then_verify(tmp_path):
    """`make demo` as written, its effects as the README states them, then the README's `xfer verify` on it."""
    done = type_in(readme_command("make demo"), timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    top1 = {row["net"]: float(row["top1"]) for row in csv.DictReader((demo.default_out() / "summary.csv").open())}
    anb = [top1[f"transfer0A0B_1_{n}"] for n in demo.ALL_N]
    assert anb[0] > anb[3] > anb[6] and anb[0] - anb[6] > 0.15, f"AnB must fall with n: {anb}"
    for name in [f"{p}_1_{n}" for p in ("transfer0B0B", "transfer-ft0B0B", "transfer-ft0A0B") for n in demo.ALL_N]:
        assert abs(top1[name] - top1["half0B"]) <= 0.03, f"{name} {top1[name]} not within 3 points of base B"
    if caffeenv.pinned_blas_env(environ={})[0]:  # pinned: the README's digits are this run's
        printed = ", ".join(f"{100 * a:.1f}" for a in anb[:-1]) + f", {100 * anb[-1]:.1f}%"
        assert f"falls with n: {printed}" in re.sub(r"\s+", " ", README), \
            f"README's AnB line differs from what `make demo` printed: {printed}"
        assert f"base B (pullover, coat, sandal, shirt, ankle boot) {100 * top1['half0B']:.1f}%" in README
    verify = type_in(readme_command("xfer verify --results ~/.cache/xfer/demo/results"))
    assert verify.returncode == 0, verify.stderr
    assert "frozen layers unchanged" in verify.stdout and verify.stdout.count("bit-identical") == 3


def test_xfer_summary_paper_families(fetched_cache):
    env = dict(os.environ, XFER_CACHE=str(fetched_cache))
    env.pop("XFER_PAPER_DIR", None)
    done = type_in(readme_command("xfer summary --paper --families"), env=env)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^\s*BnB\s+1: 0\.\d{4}", done.stdout, re.M), done.stdout[-2000:]


@pytest.mark.slow
def test_make_bench(fetched_cache):
    """`make bench` as written, with the fetched paper logs (XFER_PAPER_DIR, so setup keeps the kit's own cache)."""
    env = dict(os.environ, XFER_PAPER_DIR=str(fetched_cache / "paper"))
    done = type_in("make bench", env=env, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    benches = sorted(p.name for p in (ROOT / "bench").glob("*.py"))
    assert [line.split("/")[-1] for line in re.findall(r"^== (\S+)", done.stdout, re.M)] == benches
    assert "skipped" not in done.stdout, "with the paper's logs fetched, no benchmark may skip"
    assert "make bench" in README and "docs/performance.md" in README
