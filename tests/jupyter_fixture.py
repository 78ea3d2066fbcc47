"""Helpers for the tests that start a Jupyter server or a browser: free loopback ports, a Jupyter environment kept
in the test's temp dir, and processes found, waited for and stopped by their own pids (from /proc)."""
import json
import os
import signal
import socket
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def descendants(pid) -> list:
    """Pids of every process below pid (from /proc), nearest first."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def wait_gone(pids, seconds) -> list:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.2)
    return [p for p in pids if alive(p)]


def kill_left(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def jupyter_env(tmp_path, **extra) -> dict:
    """The server's environment: its config, runtime and IPython state in the temp dir, nothing in $HOME."""
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"), IPYTHONDIR=str(tmp_path / "ipython"),
               JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"), **extra)
    # No news toast over the page; outputs shown in full, not in a scrolled box (Figure 2 whole in the screenshot).
    settings = {"@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
                "@jupyter-notebook/notebook-extension/scroll-output": {"autoScrollOutputs": False}}
    for plugin, values in settings.items():
        path = tmp_path / "jupyter-config" / "lab" / "user-settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    return env


def wait_http(url, proc, seconds=90) -> str:
    deadline = time.monotonic() + seconds
    while True:
        assert proc.poll() is None, f"the server exited with {proc.returncode}"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return answer.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def stop(pid, seconds=30) -> bool:
    """SIGTERM to pid, SIGKILL if it is still there after `seconds`; True when it went on SIGTERM."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    if not wait_gone([pid], seconds):
        return True
    kill_left([pid])
    return False
