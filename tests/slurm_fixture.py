"""A real one-node SLURM (munged, slurmctld, slurmd) on loopback for the slurm tests, started by tools/slurm/start.sh.

The daemons run as root with a throw-away config and state in a temporary folder; teardown stops each one by the
pid in its pid file (tools/slurm/stop.sh). Import the fixture into a test module: `from slurm_fixture import slurm`.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol")


def missing_daemons() -> list:
    return [name for name in DAEMONS if not shutil.which(name) and not Path("/usr/sbin", name).exists()]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """SLURM_CONF of a running cluster with 2 CPUs; exported to the test process (and so to `xfer` children)."""
    if os.geteuid() != 0:
        pytest.skip("the SLURM daemons are started as root (run the slurm tests as root, as CI does)")
    if missing_daemons():
        pytest.skip(f"SLURM is not installed ({', '.join(missing_daemons())} missing): `make setup` installs it")
    state = tmp_path_factory.mktemp("slurm")
    start = subprocess.run([str(ROOT / "tools" / "slurm" / "start.sh"), str(state), "2"], capture_output=True,
                           text=True, timeout=120)
    try:
        assert start.returncode == 0, f"start.sh failed: {start.stderr}"
        conf = str(state / "slurm.conf")
        previous = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = conf
        yield conf
    finally:
        subprocess.run([str(ROOT / "tools" / "slurm" / "stop.sh"), str(state)], timeout=60)
        if start.returncode == 0:
            if previous is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = previous


def scontrol_job(job_id) -> dict:
    """`scontrol show job` as a dict of its Key=Value fields."""
    text = subprocess.run(["scontrol", "show", "job", str(job_id)], capture_output=True, text=True,
                          check=True).stdout
    fields = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep:
            fields.setdefault(key, value)
    return fields
