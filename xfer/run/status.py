"""`xfer status`'s rows: per registry net, its state (finished, running, queued, stopped, ...), iteration, last
accuracy, ETA, whether its frozen layers verified, and its job (asked of the run backends); and the table's text."""
import os

from ..logs.tail import log_files, parsed_progress
from . import backends
from .netdir import (hand_trainings, is_finished, latest_snapshot, lock_holder, net_dir, read_status,
                          solver_schedule)


def test_accuracy(test: dict):
    """The accuracy among a test's outputs: named `accuracy`, or output #0 as in the paper's logs."""
    if not test:
        return None
    for key, value in test.items():
        if "acc" in key:
            return value
    return test.get("#0")


def net_state(net, results, queues=None, by_hand=None) -> dict:
    """One row of the status table for a registry net; `queues`: backends.queues(), `by_hand`:
    netdir.hand_trainings(), each taken once per table (None: looked up for this net)."""
    folder = net_dir(results, net.name)
    row = {"net": net.name, "max_iter": solver_schedule(folder, net)["max_iter"], "iteration": None, "accuracy": None,
           "eta": None,
           "job": None, "state": "not rendered", "verified": None, "reason": None}
    if not folder.is_dir():
        return row
    status = read_status(folder)
    progress = parsed_progress(folder)
    latest = latest_snapshot(folder)
    row["iteration"] = progress.get("iteration") or status.get("iteration") or (latest[0] if latest else None)
    row["accuracy"] = test_accuracy(progress.get("test") or status.get("test") or {})
    row["verified"] = (status.get("verify") or {}).get("ok")
    row["job"], queued = backends.job_of(folder, queues)
    holder = lock_holder(folder)
    hand = (hand_trainings() if by_hand is None else by_hand).get(os.path.realpath(folder))
    if hand and not row["job"]:
        row["job"] = f"by hand (pid {hand[0][0]})"  # `caffe train` run in the folder, as in the original README
    if is_finished(net, results):
        row["state"] = "finished"
        row["iteration"] = row["max_iter"]
    elif holder or hand:
        row["state"] = "running"
        if progress.get("rate") and row["iteration"] is not None:
            row["eta"] = (row["max_iter"] - row["iteration"]) / progress["rate"]
    elif queued:
        row["state"] = queued
    elif status.get("state") in ("failed", "stopped"):
        row["state"] = status["state"]
    elif latest or log_files(folder):
        row["state"] = "stopped"
    else:
        row["state"] = "not started"
    if row["state"] not in ("finished", "running", "queued"):
        row["reason"] = stop_reason(status)  # also under a job state: `cancelled`, `failed`, `timeout`
    return row


def stop_reason(status):
    """Why the last run ended early, from its status file: `failed: <Caffe's fatal log line> (log <file>)` or
    `stopped by SIGTERM (snapshot at iteration N)`; None when it says nothing."""
    if status.get("state") == "failed":
        where = f" (log {status['log']})" if status.get("log") else ""
        return "failed: " + (status.get("reason") or f"exit status {status.get('exit_code')}") + where
    if status.get("stop_signal"):
        at = status.get("stopped_at")
        why = f"stopped: {status['stop_reason']}" if status.get("stop_reason") else \
            f"stopped by {status['stop_signal']}"
        return why + (f" (snapshot at iteration {at})" if at is not None else "")
    return None


def reason_lines(rows) -> list[str]:
    """`net: failed: ...` / `net: stopped by ...`, one line per net whose last run ended early."""
    return [f"{row['net']}: {row['reason']}" for row in rows if row.get("reason")]


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


def table_lines(rows) -> list[str]:
    """The status table, one string per line (header first), columns padded to their widest cell."""
    header = ["net", "state", "iter/max", "accuracy", "eta", "frozen", backends.job_heading()]
    table = [header] + [format_row(r) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in table]


def state_counts(rows) -> str:
    """`2 finished, 3 not started`: how many nets are in each state, states in name order."""
    counts = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
