"""What state a net's folder is in (snapshots, status file, lock, log progress), and `xfer status`: one table of all.

The trainer (xfer/train.py) writes `xfer_status.json` in the net folder; the SLURM backend writes `xfer_slurm.json`.
Everything else is read from the folder itself, so the table is right even for runs started by hand with `caffe train`.
"""
import datetime
import fcntl
import json
import os
import re
from pathlib import Path

from .paths import RESULTS_DIR, write_text_atomic

STATUS_FILE = "xfer_status.json"
SLURM_FILE = "xfer_slurm.json"
LOCK_FILE = ".xfer_train.lock"
SOLVER_FILE = "imagenet_solver.prototxt"
SNAPSHOT_RE = re.compile(r"_iter_(\d+)\.(caffemodel|solverstate)$")
# glog prefixes: `I20261125 19:16:03.289494` (glog 0.6, year included) or `I0418 20:41:08.074206` (2014 logs).
LOG_TIME_RE = re.compile(r"^[IWEF](\d{8}|\d{4}) (\d\d:\d\d:\d\d\.\d+)")
ITER_RE = re.compile(r"\] Iteration (\d+)")
TEST_RE = re.compile(r"(?:Test net output|Test score) #(\d+): (?:(\S+) = )?(-?nan|[-+]?inf|[-+]?[0-9.]+(?:[eE][-+]?\d+)?)")
TAIL_BYTES = 256 * 1024


def results_root(results=None, suite="paper") -> Path:
    """The results tree: --results when given, else where `xfer render` puts the suite (results/ for the paper)."""
    if results:
        return Path(results)
    if suite == "paper":
        return RESULTS_DIR
    from .render import default_out
    return default_out(suite)


def net_dir(results, name) -> Path:
    return Path(results or RESULTS_DIR) / name


def snapshots(folder, kind="caffemodel") -> list[tuple[int, Path]]:
    """(iteration, path) of every `*_iter_N.<kind>` in the folder, oldest first."""
    found = []
    for path in Path(folder).glob(f"*_iter_*.{kind}"):
        match = SNAPSHOT_RE.search(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_snapshot(folder, kind="caffemodel"):
    """(iteration, path) of the newest snapshot, or None."""
    found = snapshots(folder, kind)
    return found[-1] if found else None


def solver_schedule(folder, net=None) -> dict:
    """max_iter and snapshot_prefix of the folder's rendered solver (renders may override the registry's)."""
    found = {}
    try:
        text = (Path(folder) / SOLVER_FILE).read_text()
    except FileNotFoundError:
        text = ""
    for key, pattern in (("max_iter", r"^\s*max_iter\s*:\s*(\d+)"), ("snapshot_prefix", r'^\s*snapshot_prefix\s*:\s*"([^"]*)"')):
        match = re.search(pattern, text, re.M)
        if match:
            found[key] = int(match.group(1)) if key == "max_iter" else match.group(1)
    if net is not None:
        found.setdefault("max_iter", net.schedule.max_iter)
        found.setdefault("snapshot_prefix", net.schedule.snapshot_prefix)
    return found


def final_snapshot_path(net, results) -> Path:
    """The snapshot Caffe writes at the end of training: `<prefix>_iter_<max_iter>.caffemodel` in the net folder."""
    folder = net_dir(results, net.name)
    sched = solver_schedule(folder, net)
    return folder / f"{sched['snapshot_prefix']}_iter_{sched['max_iter']}.caffemodel"


def is_finished(net, results) -> bool:
    """A net is finished when its final snapshot (iteration max_iter) is complete: the file transfers start from.

    Caffe writes the .caffemodel, then the .solverstate; a run killed between the two leaves a .caffemodel that
    may be cut short, so the solverstate beside it (or a status file that saw Caffe finish) is the proof.
    """
    final = final_snapshot_path(net, results)
    if not final.is_file():
        return False
    state = final.with_name(final.name.removesuffix(".caffemodel") + ".solverstate")
    return state.is_file() or read_status(final.parent).get("state") == "finished"


def read_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def read_status(folder) -> dict:
    return read_json(Path(folder) / STATUS_FILE)


def write_status(folder, **fields) -> dict:
    """Merge `fields` into the folder's status file (atomically; only the trainer holding the lock writes it)."""
    status = read_status(folder)
    status.update(fields, updated=now_iso())
    write_text_atomic(Path(folder) / STATUS_FILE, json.dumps(status, indent=1, sort_keys=True) + "\n")
    return status


def now_iso() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def lock_holder(folder):
    """Who holds the training lock of a folder ("pid 123 on host"), or None when nobody trains it now.

    Probes with a shared non-blocking flock: it fails only while a trainer (or its caffe child) holds the lock.
    """
    path = Path(folder) / LOCK_FILE
    if not path.exists():
        return None
    with open(path) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "another process"
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def logs(folder) -> list[Path]:
    """The folder's training logs, oldest first (names start with a sortable timestamp)."""
    return sorted(p for p in Path(folder).glob("*.log") if p.is_file())


def parse_log_time(prefix_date: str, clock: str, year: int):
    if len(prefix_date) == 8:
        stamp = f"{prefix_date} {clock}"
    else:
        stamp = f"{year}{prefix_date} {clock}"
    try:
        return datetime.datetime.strptime(stamp, "%Y%m%d %H:%M:%S.%f").timestamp()
    except ValueError:
        return None


def scan_log_lines(lines, year=None) -> dict:
    """Iteration, test outputs and timing from Caffe log lines (a whole log or its tail)."""
    year = year or datetime.date.today().year
    info = {"iteration": None, "test": {}, "test_iteration": None, "points": []}
    testing_at = None
    for line in lines:
        stamp = LOG_TIME_RE.match(line)
        it = ITER_RE.search(line)
        if it:
            info["iteration"] = int(it.group(1))
            if "Testing net" in line:
                testing_at = int(it.group(1))
            elif stamp:
                when = parse_log_time(stamp.group(1), stamp.group(2), year)
                if when is not None:
                    info["points"].append((when, int(it.group(1))))
            continue
        test = TEST_RE.search(line)
        if test and testing_at is not None:
            if info["test_iteration"] != testing_at:
                info["test"], info["test_iteration"] = {}, testing_at
            key = test.group(2) or f"#{test.group(1)}"
            info["test"][key] = float(test.group(3))
    return info


def read_tail(path, size=TAIL_BYTES) -> list[str]:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        end = handle.tell()
        handle.seek(max(0, end - size))
        data = handle.read().decode("utf-8", "replace")
    lines = data.splitlines()
    return lines[1:] if end > size else lines  # the first line of a tail is usually cut


def log_progress(folder) -> dict:
    """Progress from the newest log's tail: iteration, last test outputs, iterations/second over the tail."""
    found = logs(folder)
    if not found:
        return {}
    newest = found[-1]
    info = scan_log_lines(read_tail(newest))
    points = info.pop("points")
    info["rate"] = None
    if len(points) >= 2 and points[-1][0] > points[0][0] and points[-1][1] > points[0][1]:
        info["rate"] = (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])
    info["last_time"] = points[-1][0] if points else None
    info["log"] = str(newest)
    return info


def parsed_progress(folder) -> dict:
    """Progress from every log of the folder through the kit's log parser (xfer/caffelog.py): restarts merged,
    the rate from the last intervals of the newest run. Falls back to the newest log's tail without it."""
    try:
        from .caffelog import parse_net_dir
    except ImportError:
        return log_progress(folder)
    try:
        netlog = parse_net_dir(folder)
    except Exception:  # a parser problem must not hide the table; the tail reader still knows the basics
        return log_progress(folder)
    if not netlog.files:
        return {}
    info = {"iteration": netlog.last_iter or None, "test": {}, "test_iteration": None, "rate": None}
    if netlog.tests:
        last = max(int(series.iter[-1]) for series in netlog.tests.values() if len(series))
        info["test_iteration"] = last
        info["test"] = {name: float(series.value[-1]) for name, series in netlog.tests.items()
                        if len(series) and int(series.iter[-1]) == last}
    _, seconds = netlog.seconds_per_iter()
    recent = seconds[-10:]
    if len(recent) and float(recent.mean()) > 0:
        info["rate"] = 1.0 / float(recent.mean())
    return info


def test_accuracy(test: dict):
    """The accuracy among a test's outputs: named `accuracy`, or output #0 as in the paper's logs."""
    if not test:
        return None
    for key, value in test.items():
        if "acc" in key:
            return value
    return test.get("#0")


def net_state(net, results, queue=None) -> dict:
    """One row of the status table for a registry net."""
    folder = net_dir(results, net.name)
    row = {"net": net.name, "max_iter": solver_schedule(folder, net)["max_iter"], "iteration": None, "accuracy": None, "eta": None,
           "job": None, "state": "not rendered", "verified": None}
    if not folder.is_dir():
        return row
    status = read_status(folder)
    progress = parsed_progress(folder)
    latest = latest_snapshot(folder)
    row["iteration"] = progress.get("iteration") or status.get("iteration") or (latest[0] if latest else None)
    row["accuracy"] = test_accuracy(progress.get("test") or status.get("test") or {})
    row["verified"] = (status.get("verify") or {}).get("ok")
    slurm = read_json(folder / SLURM_FILE)
    queued = (queue or {}).get(str(slurm.get("job_id"))) if slurm else None
    if slurm:
        row["job"] = f"{slurm['job_id']}" + (f" {queued}" if queued else "")
    holder = lock_holder(folder)
    if is_finished(net, results):
        row["state"] = "finished"
        row["iteration"] = row["max_iter"]
    elif holder:
        row["state"] = "running"
        if progress.get("rate") and row["iteration"] is not None:
            row["eta"] = (row["max_iter"] - row["iteration"]) / progress["rate"]
    elif queued:
        row["state"] = "queued" if queued in ("PENDING", "CONFIGURING") else queued.lower()
    elif status.get("state") in ("failed", "stopped"):
        row["state"] = status["state"]
    elif latest or logs(folder):
        row["state"] = "stopped"
    else:
        row["state"] = "not started"
    return row


def squeue_states() -> dict:
    """{job id: state} of the kit's SLURM jobs, or {} when SLURM is not reachable."""
    from . import slurm
    return slurm.queue_states()


def format_eta(seconds) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


def format_row(row) -> list[str]:
    iteration = "-" if row["iteration"] is None else str(row["iteration"])
    accuracy = "-" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
    verified = {True: "ok", False: "FAILED", None: "-"}[row["verified"]]
    return [row["net"], row["state"], f"{iteration}/{row['max_iter']}", accuracy, format_eta(row["eta"]),
            verified, row["job"] or "-"]


def print_table(rows) -> None:
    header = ["net", "state", "iter/max", "accuracy", "eta", "frozen", "slurm job"]
    table = [header] + [format_row(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


def run_status(args) -> int:
    from . import registry
    results = results_root(args.results, args.suite)
    queue = squeue_states()
    rows = [net_state(net, results, queue) for net in registry.match(args.patterns, suite=args.suite)]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print_table(rows)
        counts = {}
        for row in rows:
            counts[row["state"]] = counts.get(row["state"], 0) + 1
        print(", ".join(f"{n} {state}" for state, n in sorted(counts.items())))
    return 0


def register(sub):
    p = sub.add_parser("status", help="one table of every net: state, iteration, accuracy, ETA, SLURM job")
    p.add_argument("patterns", nargs="*", metavar="NET_PATTERN", help="fnmatch patterns of net names (default all)")
    p.add_argument("--suite", default="paper", choices=("paper", "mini"), help="which suite of the registry")
    p.add_argument("--results", help="the results tree (default: results/ of the kit)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=run_status)

