"""One decompressed Caffe log (bytes) -> record arrays, without a Python loop over its lines.

A paper log holds ~20 000 lines, almost all `Iteration N, lr = X` / `Iteration N, loss = X`, plus the test lines
`Iteration N, Testing net` / `Test score #K: X`. Those are found with one pass over the bytes (every newline, `=`
and `T`) and decoded from the 64-bit words around each `=` and `T` (caffelog_swar). Every other candidate line
(Caffe 1.0's test outputs and `Iteration N (x iter/s, ...)`, whatever the fast path rejects) goes through the exact
per-line path in caffelog_lines. Both give the same records; times are resolved for all of them together.
"""
import numpy as np

from . import caffelog_lines as lines_mod
from .caffelog_lines import LOSS, LR, SCORE, TESTING
from .caffelog_swar import (Window, byte_index, equal_bytes, low_mask, parse_decimals, parse_stamps, trailing_int,
                            word, words_view)

NL, EQ, TEE, CR, SPACE = 10, 61, 84, 13, 32
CHUNK = 1 << 20  # bytes compared per step: temporaries stay in cache
EDGE = 64  # '=' / 'T' this close to either end of the buffer go to the per-line path (no bounds checks needed)
MSG_BEFORE, MSG_WIDTH = 40, 64  # the bytes read around each '=': from `] Iteration 1234567, loss =` to the value
HEAD_WIDTH = 32  # the bytes read at each line start: the glog stamp
W_LR, W_LOSS = word(b", lr ="), word(b", loss =")
W_ITER, W_N_SPACE, W_BRACKET = word(b"Iteratio"), word(b"n "), word(b"] ")
W_TEST_SCORE, W_RE_HASH, W_TESTING, W_NET_NL = word(b"Test sco"), word(b"re #"), word(b"Testing "), word(b"net\n")
M2, M3, M4, M6 = (np.uint64((1 << (8 * k)) - 1) for k in (2, 3, 4, 6))
COLUMNS = ("line", "kind", "iter", "value", "year", "month", "day", "sod", "name")


def split_lines(a):
    """Newline positions, and the positions and line numbers of every '=' and of every 'T'."""
    found, hit, other = [], np.empty(CHUNK, bool), np.empty(CHUNK, bool)
    for i in range(0, len(a), CHUNK):
        part = a[i:i + CHUNK]
        m, o = hit[:len(part)], other[:len(part)]
        np.equal(part, NL, out=m)
        m |= np.equal(part, EQ, out=o)
        m |= np.equal(part, TEE, out=o)
        found.append(np.flatnonzero(m) + i)
    pos = np.concatenate(found) if found else np.zeros(0, np.int64)
    chars = a[pos]
    is_nl = chars == NL
    line_of = np.cumsum(is_nl) - is_nl
    is_eq, is_t = chars == EQ, chars == TEE
    return pos[is_nl], pos[is_eq], line_of[is_eq], pos[is_t], line_of[is_t]


def first_per_line(line_of):
    """Mask of the first occurrence in each line (line_of is sorted)."""
    keep = np.ones(len(line_of), bool)
    keep[1:] = line_of[1:] != line_of[:-1]
    return keep


def alone_per_line(line_of):
    keep = first_per_line(line_of)
    keep[:-1] &= first_per_line(line_of)[1:]
    return keep


def unique_sorted(values):
    return values[first_per_line(values)]


def iteration_before(word_at, last_digit):
    """`] Iteration N` ending at `last_digit`: N (-1 where the text is not that) and the position of the ']'."""
    iters, ndigits = trailing_int(word_at(last_digit - 7))
    first = last_digit - ndigits + 1
    ok = (iters >= 0) & (word_at(first - 10) == W_ITER) & ((word_at(first - 2) & M2) == W_N_SPACE)
    ok &= (word_at(first - 12) & M2) == W_BRACKET
    return np.where(ok, iters, -1), first - 12


def value_length(win, offset):
    """Bytes from `offset` to the end of the line (a newline or CR), up to 16; 99 where it is longer."""
    a, b = win.word(offset), win.word(offset + 8)
    stop_a = equal_bytes(a, NL) | equal_bytes(a, CR)
    stop_b = equal_bytes(b, NL) | equal_bytes(b, CR)
    lowest = byte_index(stop_a & (~stop_a + np.uint64(1)))
    lowest_b = byte_index(stop_b & (~stop_b + np.uint64(1)))
    return np.where(stop_a != 0, lowest, np.where(stop_b != 0, 8 + lowest_b, 99))


def scan_train(buf, q):
    """`] Iteration N, lr = X` and `] Iteration N, loss = X` around each '=' at q: kind, N, X, ']' position, ok."""
    win = Window(buf, q - MSG_BEFORE, MSG_WIDTH)
    eq = MSG_BEFORE
    is_lr = (win.word(eq - 5) & M6) == W_LR
    is_loss = win.word(eq - 7) == W_LOSS
    iters, bracket = iteration_before(win.words_at, np.where(is_lr, eq - 6, eq - 8))
    ok = (is_lr | is_loss) & (iters >= 0) & (win.byte(eq + 1) == SPACE)
    length = value_length(win, eq + 2)
    values, exact = parse_decimals(win.word(eq + 2), win.byte(eq + 10), length)
    other = np.flatnonzero(ok & ~exact)  # nan, `1e-05`, signs: read by Python, once per distinct text
    values[other], ok[other] = read_other(buf, win.word(eq + 2)[other], q[other] + 2, q[other] + 2 + length[other])
    return np.where(is_lr, LR, LOSS), iters, values, bracket + q - MSG_BEFORE, ok


def scan_tests(buf, t, t_end):
    """`] Test score #K: X` (K, X) and `] Iteration N, Testing net` (N) at each 'T' position t (2014 logs)."""
    size = len(buf)
    words, a = words_view(buf), np.frombuffer(buf, np.uint8)
    at = words.__getitem__
    is_score = (at(t) == W_TEST_SCORE) & ((at(t + 8) & M4) == W_RE_HASH) & ((at(t + 13) & M2) == word(b": "))
    index = a[t + 12].astype(np.int64) - 48
    scores, exact = parse_decimals(at(t + 15), a[np.minimum(t + 23, size - 1)], t_end - t - 15)
    is_score &= (index >= 0) & (index <= 9) & exact & ((at(t - 2) & M2) == W_BRACKET)
    is_testing = (at(t) == W_TESTING) & ((at(t + 8) & M4) == W_NET_NL) & ((at(t - 2) & M2) == word(b", "))
    t_iter, t_bracket = iteration_before(at, t - 3)
    is_testing &= t_iter >= 0
    return index, scores, is_score, t_iter, t_bracket, is_testing


def scan_fast(buf: bytes):
    """Records of the common line shapes, plus the line numbers left for the per-line path."""
    size = len(buf)
    a = np.frombuffer(buf, np.uint8)
    newlines, q, q_line, t, t_line = split_lines(a)
    if size < 4 * EDGE:  # the windows need room; nothing this close to the ends is read by the fast path anyway
        buf = buf + b"\0" * (4 * EDGE)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [size]))
    inner_q = (q >= EDGE) & (q < size - EDGE) & alone_per_line(q_line)
    qi, qli = q[inner_q], q_line[inner_q]
    kind, iters, values, bracket, ok = scan_train(buf, qi)
    first_t = first_per_line(t_line)
    inner_t = (t >= EDGE) & (t < size - EDGE) & first_t
    ti, tli = t[inner_t], t_line[inner_t]
    index, scores, is_score, t_iter, t_bracket, is_testing = scan_tests(buf, ti, ends[tli])
    nt = len(ti)
    rec = {"line": np.concatenate((qli, tli, tli)),
           "kind": np.concatenate((kind, np.full(nt, SCORE), np.full(nt, TESTING))).astype(np.int8),
           "iter": np.concatenate((iters, index, t_iter)),
           "value": np.concatenate((values, scores, np.full(nt, np.nan))),
           "name": np.concatenate((np.zeros(len(qi)), -1 - index, np.zeros(nt))).astype(np.int16)}
    keep = np.concatenate((ok, is_score, is_testing))
    bracket = np.concatenate((bracket, ti - 2, t_bracket))[keep]
    rec = {k: v[keep] for k, v in rec.items()}
    line_start = starts[rec["line"]]
    year, month, day, sod, stamp_ok = parse_stamps(Window(buf, line_start, HEAD_WIDTH))
    stamp_ok &= bracket > line_start + 20
    rec.update(year=year, month=month, day=day, sod=sod)
    rec = {k: v[stamp_ok] for k, v in rec.items()}
    leftover = unique_sorted(np.sort(np.concatenate((q_line, t_line[first_t]))))
    leftover = leftover[~contains_sorted(rec["line"], leftover)]
    return rec, leftover, starts, ends


def read_other(buf, words, start, end):
    """float() of the values the word parser left (an unreadable one is NaN and not ok)."""
    length = end - start
    short = length <= 8
    keys = np.where(short, words & low_mask(length), 0)
    distinct, inverse = np.unique(keys[short], return_inverse=True)
    known = np.array([lines_mod.read_float(int(k).to_bytes(8, "little").rstrip(b"\0")) for k in distinct.tolist()],
                     dtype=object)
    out = np.full(len(start), None, dtype=object)
    out[short] = known[inverse]
    for i in np.flatnonzero(~short):
        out[i] = lines_mod.read_float(buf[start[i]:end[i]])
    ok = out != None  # noqa: E711 (elementwise)
    return np.where(ok, out, np.nan).astype(np.float64), ok


def contains_sorted(haystack, needles):
    """Mask of the needles present in `haystack` (sorted or not)."""
    ordered = np.sort(haystack)
    found = np.searchsorted(ordered, needles)
    return (found < len(ordered)) & (ordered[np.minimum(found, len(ordered) - 1)] == needles)


def scan_buffer(buf: bytes, hint) -> dict:
    """Every record of one decompressed log in file order, times resolved; garbled lines counted."""
    fast, leftover, starts, ends = scan_fast(buf)
    unterminated = len(starts) - 1 if buf and not buf.endswith(b"\n") else -1
    if unterminated >= 0 and (leftover.size == 0 or leftover[-1] != unterminated):
        leftover = np.append(leftover, unterminated)
        fast = {k: v[fast["line"] != unterminated] for k, v in fast.items()}
    slow, outputs, bad = lines_mod.scan_lines(buf, leftover, starts, ends, unterminated)
    rec = {k: np.concatenate((fast[k], np.asarray([r[j] for r in slow], fast[k].dtype)))
           for j, k in enumerate(COLUMNS)}
    order = np.argsort(rec["line"], kind="stable")
    rec = {k: v[order] for k, v in rec.items()}
    time = lines_mod.resolve_times(rec["year"], rec["month"], rec["day"], rec["sod"], hint)
    return assemble(rec, time, outputs, bad, len(starts) - (unterminated < 0))


def assemble(rec, time, outputs, bad, nlines):
    """Train and test arrays from the combined records (file order)."""
    kind = rec["kind"]
    train = (kind == LOSS) | (kind == LR)
    iters = rec["iter"][train]
    segment = np.concatenate(([0], np.cumsum(np.diff(iters) < 0))).astype(np.int32) if len(iters) else iters
    testing = np.flatnonzero(kind == TESTING)
    score = np.flatnonzero(kind == SCORE)
    owner = np.searchsorted(testing, score) - 1  # a test output belongs to the last "Testing net" line before it
    orphan = owner < 0
    score, owner = score[~orphan], owner[~orphan]
    codes = rec["name"][score]
    seen = sorted(set(codes.tolist()), key=lambda c: (c >= 0, -c if c < 0 else c))  # 2014 scores by index first
    names = [lines_mod.SCORE_NAMES_2014.get(-1 - c, f"score{-1 - c}") if c < 0 else outputs[c] for c in seen]
    distinct = list(dict.fromkeys(names))
    remap = {c: distinct.index(n) for c, n in zip(seen, names)}
    return {
        "train_kind": kind[train], "train_iter": iters, "train_value": rec["value"][train],
        "train_time": time[train], "train_segment": segment,
        "test_iter": rec["iter"][testing[owner]], "test_value": rec["value"][score], "test_time": time[score],
        "test_names": distinct, "test_name": np.array([remap[c] for c in codes.tolist()], np.int16),
        "lines": nlines, "bad": len(bad) + int(orphan.sum()),
        "bad_examples": [(n + 1, text[:160].decode("utf-8", "replace")) for n, text in bad[:5]],
    }
