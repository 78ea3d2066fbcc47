"""Progress of a training from its logs: the newest log's tail (cheap: what the trainer and status read while a
net trains), or every log of the folder through the parser (restarts merged)."""
import datetime
import os
import re
from pathlib import Path

from .discover import find_logs, newest_log

# glog prefixes: `I20261125 19:16:03.289494` (glog 0.6, year included) or `I0418 20:41:08.074206` (2014 logs).
LOG_TIME_RE = re.compile(r"^[IWEF](\d{8}|\d{4}) (\d\d:\d\d:\d\d\.\d+)")
ITER_RE = re.compile(r"\] Iteration (\d+)")
TEST_RE = re.compile(r"(?:Test net output|Test score) #(\d+): (?:(\S+) = )?"
                     r"(-?nan|[-+]?inf|[-+]?[0-9.]+(?:[eE][-+]?\d+)?)")
TAIL_BYTES = 256 * 1024


def log_files(folder) -> list[Path]:
    """The folder's Caffe logs, whatever their names (discover.py), in name order (the kit's: oldest first)."""
    return find_logs(folder)


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
    newest = newest_log(folder)
    if newest is None:
        return {}
    info = scan_log_lines(read_tail(newest))
    points = info.pop("points")
    info["rate"] = None
    if len(points) >= 2 and points[-1][0] > points[0][0] and points[-1][1] > points[0][1]:
        info["rate"] = (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])
    info["last_time"] = points[-1][0] if points else None
    info["log"] = str(newest)
    return info


def parsed_progress(folder) -> dict:
    """Progress from every log of the folder through the kit's log parser (xfer/logs/parser.py): restarts merged,
    the rate from the last intervals of the newest run. Falls back to the newest log's tail without it."""
    try:
        from .parser import parse_net_dir  # lazy for start-up: the parser loads numpy, the tail reader does not
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
