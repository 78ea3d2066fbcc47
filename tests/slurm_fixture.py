"""A real one-node SLURM (munged, slurmctld, slurmd) on loopback for the slurm tests, started by tools/slurm/start.sh.

The daemons run as root with a throw-away config and state in a temporary folder; teardown stops each one by the
pid in its pid file (tools/slurm/stop.sh). Import the fixture into a test module: `from slurm_fixture import slurm`.
"""
import os
import shutil
import signal
import subprocess
import time
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
        if start.returncode == 0:
            cancel_all(str(state / "slurm.conf"))
        subprocess.run([str(ROOT / "tools" / "slurm" / "stop.sh"), str(state)], timeout=60)
        if start.returncode == 0:
            if previous is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = previous


def cancel_all(conf, timeout=20) -> None:
    """Cancel every job still active (a failed test may leave one): stopping the daemons leaves a job's slurmstepd
    and its Caffe running."""
    env = dict(os.environ, SLURM_CONF=conf)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        active = subprocess.run(["squeue", "-h", "-t", "active", "-o", "%i"], capture_output=True, text=True,
                                env=env, timeout=15)
        if active.returncode != 0 or not active.stdout.split():
            return
        subprocess.run(["scancel", *active.stdout.split()], env=env, timeout=15)
        time.sleep(1)


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


# ---- faults of the cluster itself (tests/test_slurm_faults.py): a node that dies, a controller that restarts -----
def daemon_pid(conf, name) -> int:
    return int((Path(conf).parent / f"{name}.pid").read_text())


def stop_daemon(conf, name, signum=signal.SIGTERM, timeout=60) -> None:
    """Signal slurmd or slurmctld of the cluster at `conf` by its pid file and wait until it has gone."""
    pid = daemon_pid(conf, name)
    os.kill(pid, signum)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        assert time.monotonic() < deadline, f"{name} (pid {pid}) still there {timeout} s after {signum.name}"
        time.sleep(0.1)


def start_slurmd(conf) -> None:
    subprocess.run(["slurmd", "-f", conf, "-N", "localhost"], check=True, timeout=60)


def start_slurmctld(conf, timeout=60) -> None:
    """slurmctld without -c: it recovers its jobs (and their dependencies) from its state folder."""
    subprocess.run(["slurmctld", "-f", conf], check=True, timeout=60)
    deadline = time.monotonic() + timeout
    while "is UP" not in subprocess.run(["scontrol", "ping"], capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, f"slurmctld did not answer within {timeout} s"
        time.sleep(0.2)
