"""The exact, per-line half of the log parser, and the glog clock -> seconds conversion.

`scan` decodes the bulk of a log (the train lines) with whole-buffer numpy passes and hands every other
candidate line here: test lines of both formats, Caffe 1.0's `Iteration N (x iter/s, ...), loss = X`, and whatever
the fast path rejected. A line that mentions one of the records we track but does not parse is counted as garbled.
"""
import re
import time

import numpy as np

LOSS, LR, TESTING, SCORE = 0, 1, 2, 3
# The paper's val nets end in Accuracy then the loss, so 2014's unnamed "Test score #0/#1" are these.
SCORE_NAMES_2014 = {0: "accuracy", 1: "loss"}

HEADER = re.compile(rb"([IWEF])(\d{8}|\d{4}) (\d\d):(\d\d):(\d\d)\.(\d{6})\s+\S+\s+[^\]\s]+\] ?(.*)", re.S)
MESSAGES = [
    ("lr", re.compile(rb"Iteration (\d+), lr = (\S+)\Z")),
    ("loss", re.compile(rb"Iteration (\d+)(?: \([^)]*\))?, loss = (\S+)\Z")),
    ("testing", re.compile(rb"Iteration (\d+), Testing net(?: \(#(\d+)\))?\Z")),
    ("score", re.compile(rb"\s*Test score #(\d+): (\S+)\Z")),
    ("output", re.compile(rb"\s*Test net output #(\d+): (\S+) = (\S+)(?: \(\* \S+ = \S+ loss\))?\Z")),
]
# A line that says one of these but matches none of MESSAGES is garbled (truncated, interleaved, corrupt).
TRACKED = re.compile(rb"Iteration \d+(?:,| \()|Test score #|Test net output #|Testing net")
IGNORED = re.compile(rb"MultiStep Status: Iteration")
HALF_YEAR = 183 * 86400.0


def read_float(text: bytes):
    """float() of a log value (`nan`, `-nan`, `1e-05` included), None when it is not a number."""
    try:
        return float(text)
    except ValueError:
        return None


def header_fields(match):
    """(date as yyyymmdd, yyyy 0 when the stamp has no year; seconds of the day) from a HEADER match."""
    date = int(match[2])
    sod = int(match[3]) * 3600 + int(match[4]) * 60 + int(match[5]) + int(match[6]) / 1e6
    return date, sod


def scan_lines(buf: bytes, numbers, starts, ends, unterminated):
    """Records of the given lines (file order) as tuples of scan.COLUMNS, the names of Caffe 1.0 test
    outputs (a record's `name` indexes them; 2014 scores have name -1 - index), and the garbled (line, text)."""
    records, outputs, bad = [], {}, []
    net = 0  # the test net of the last "Testing net (#k)" line, for naming the outputs that follow it
    for n in numbers.tolist():
        text = buf[starts[n]:ends[n]]
        head = HEADER.match(text)
        kind, found = classify((head[7] if head else text).rstrip())
        if kind is None:
            if TRACKED.search(text) and not IGNORED.search(text):
                bad.append((n, text))
            continue
        stamp = header_fields(head) if head else None
        value = None if kind == "testing" else read_float(found[found.re.groups])
        if stamp is None or n in unterminated or not stamp_ok(stamp) or (kind != "testing" and value is None):
            bad.append((n, text))
            continue
        if kind == "testing":
            net = int(found[2] or 0)
            records.append((n, TESTING, int(found[1]), np.nan) + stamp + (0,))
        elif kind in ("lr", "loss"):
            records.append((n, LR if kind == "lr" else LOSS, int(found[1]), value) + stamp + (0,))
        else:
            index = int(found[1])
            name = SCORE_NAMES_2014.get(index, f"score{index}") if kind == "score" else \
                found[2].decode("ascii", "replace")
            name = f"net{net}/{name}" if net else name
            records.append((n, SCORE, index, value) + stamp + (outputs.setdefault(name, len(outputs)),))
    return records, list(outputs), bad


def classify(message):
    for kind, pattern in MESSAGES:
        found = pattern.match(message)
        if found:
            return kind, found
    return None, None


def stamp_ok(stamp) -> bool:
    date, sod = stamp
    return 1 <= date // 100 % 100 <= 12 and 1 <= date % 100 <= 31 and sod < 86401


def year_hint_from(name: str, mtime: float):
    """Where 2014-style logs (no year in the stamp) get their year: the `yymmdd_` name prefix that both the
    paper's jobs and the kit's logs carry (the first line is after it), else the file's mtime (the last line is
    before it)."""
    found = re.match(r"(\d\d)(\d\d)(\d\d)_", name)
    if found and 1 <= int(found[2]) <= 12 and 1 <= int(found[3]) <= 31:
        return ("start", 2000 + int(found[1]), (int(found[2]) * 32 + int(found[3])) * 86400.0)
    t = time.localtime(mtime)
    return ("end", t.tm_year, (t.tm_mon * 32 + t.tm_mday) * 86400.0 + t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec)


def resolve_times(date, sod, hint):
    """Seconds since the epoch (of the log's local clock) for records in file order; `date` is yyyymmdd.

    2014 stamps have no year (yyyy = 0): it starts from `hint` and steps forward where the clock jumps back by more
    than half a year (Dec 31 -> Jan 1), back where it jumps forward by that much (a concatenated older log). Dates
    change rarely, so the calendar is worked out once per change of date.
    """
    date, sod = np.asarray(date, np.int64), np.asarray(sod, np.float64)
    if not len(date):
        return np.zeros(0)
    change = np.ones(len(date), bool)
    change[1:] = date[1:] != date[:-1]
    first = np.flatnonzero(change)
    codes = date[first]
    year, month, day = codes // 10000, codes // 100 % 100, codes % 100
    if not (year > 0).all():
        key = (month * 32 + day) * 86400.0 + sod[first]
        step = np.diff(key)
        wraps = np.concatenate(([0], np.cumsum((step < -HALF_YEAR).astype(np.int64) - (step > HALF_YEAR))))
        mode, hint_year, hint_key = hint
        if mode == "start":
            start = hint_year if key[0] >= hint_key - 2 * 86400 else hint_year + 1
        else:
            end = hint_year if key[-1] <= hint_key + 86400 else hint_year - 1
            start = end - wraps[-1]
        year = np.where(year > 0, year, start + wraps)
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    days = months.astype("datetime64[D]").astype(np.int64) + day - 1
    return days[np.cumsum(change) - 1] * 86400.0 + sod
