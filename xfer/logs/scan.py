"""Decompressed Caffe logs (bytes) -> record arrays, without a Python loop over their lines.

A paper log holds ~20 000 lines, almost all `Iteration N, lr = X` / `Iteration N, loss = X`, plus the test lines
`Iteration N, Testing net` / `Test score #K: X`. Those are found with one pass over the bytes (every newline, `=`
and `T`) and decoded from the 64-bit words around each `=` and `T` (swar). Every other candidate line
(Caffe 1.0's test outputs and `Iteration N (x iter/s, ...)`, whatever the fast path rejects) goes through the exact
per-line path in lines. Records travel as streams (loss, lr, tests), each in file order, so that few
columns are ever copied: moving data around, not arithmetic, is what costs here.
"""
import numpy as np

from . import lines as lines_mod
from .lines import LOSS, LR, SCORE, TESTING
from .swar import Window, low_mask, parse_decimals, parse_stamps, trailing_int, word, words_view

NL, EQ, TEE, CR, SPACE = 10, 61, 84, 13, 32
CHUNK = 1 << 18  # bytes compared per step: the temporaries stay in L2 cache
EDGE = 64  # '=' / 'T' this close to either end of the buffer go to the per-line path (no bounds checks needed)
MSG_BEFORE, MSG_WIDTH = 28, 40  # the bytes read around each loss '=': from `] Iteration 1234567, loss =` to X
LR_WIDTH = 48  # around each lr '=': the same start, and 16 bytes of X
HEAD_WIDTH = 26  # the bytes read at each line start: the glog stamp
MAX_HEADER = 80  # glog's `LYYYYMMDD HH:MM:SS.uuuuuu TID file:line]` is shorter; two lines run together are longer
W_LR, W_LOSS = word(b", lr ="), word(b", loss =")
W_ITER, W_N_SPACE, W_BRACKET = word(b"Iteratio"), word(b"n "), word(b"] ")
W_TEST_SCORE, W_RE_HASH, W_TESTING, W_NET_NL = word(b"Test sco"), word(b"re #"), word(b"Testing "), word(b"net\n")
M2, M4, M6 = (np.uint64((1 << (8 * k)) - 1) for k in (2, 4, 6))
LEVELS = np.zeros(256, bool)
LEVELS[[ord(c) for c in "IWEF"]] = True  # glog's severity letters
COLUMNS = ("line", "kind", "iter", "value", "date", "sod", "name")  # date: yyyymmdd (yyyy 0 in 2014 logs)


def split_lines(a):
    """Newline positions, and the positions and line numbers of every '=' and of every 'T' (tests)."""
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
    line_of = np.cumsum(is_nl)  # newlines up to here: for a '=' or 'T', the number of its line
    # Index lists and take(), not boolean masks: masking ~13M entries per call cost twice as much.
    eq, tee = np.flatnonzero(chars == EQ), np.flatnonzero(chars == TEE)
    return pos.compress(is_nl), pos.take(eq), line_of.take(eq), pos.take(tee), line_of.take(tee)


def first_per_line(line_of):
    """Mask of the first occurrence in each line (line_of is sorted)."""
    keep = np.ones(len(line_of), bool)
    keep[1:] = line_of[1:] != line_of[:-1]
    return keep


def alone_per_line(line_of):
    keep = first_per_line(line_of)
    keep[:-1] &= first_per_line(line_of)[1:]
    return keep


def iteration_before(word_at, last_digit):
    """`] Iteration N` ending at `last_digit`: N (-1 where the text is not that) and the position of the ']'."""
    iters, ndigits = trailing_int(word_at(last_digit - 7))
    first = last_digit - ndigits + 1
    ok = (iters >= 0) & (word_at(first - 10) == W_ITER) & ((word_at(first - 2) & M2) == W_N_SPACE)
    ok &= (word_at(first - 12) & M2) == W_BRACKET
    return np.where(ok, iters, -1), first - 12


def decode_values(words, ninth, buf, start, length):
    """The numbers of `length` bytes at `start` (their first 8 bytes `words`, 9th byte `ninth`), and which of them
    are numbers."""
    values, ok = parse_decimals(words, ninth, length)
    other = np.flatnonzero(~ok)  # nan, `1e-05`, signs: read by Python, once per distinct text
    values[other], ok[other] = read_other(buf, words[other], start[other], start[other] + length[other])
    return values, ok


def decode_repeated(words, words2, ninth, buf, start, length):
    """Like decode_values for numbers that mostly repeat the one before (the learning rate): decoded only where
    the text changes, so the rest costs a few comparisons a line. `words2` holds bytes 8..15 of each text."""
    keys = words & low_mask(length)
    change = np.ones(len(words), bool)
    change[1:] = (keys[1:] != keys[:-1]) | (length[1:] != length[:-1])
    long_ = np.flatnonzero(length[1:] > 8) + 1  # past 8 bytes the rest of the text must match too
    tails = words2[long_] & low_mask(length[long_] - 8)
    change[long_] |= tails != (words2[long_ - 1] & low_mask(length[long_] - 8))
    firsts = np.flatnonzero(change)
    values, ok = decode_values(words[firsts], ninth[firsts], buf, start[firsts], length[firsts])
    group = np.cumsum(change) - 1
    return values[group], ok[group]


def stamps(buf, line_start, bracket):
    """(date yyyymmdd, seconds of the day, ok) of the glog stamps at `line_start` (the ']' at `bracket`)."""
    date, sod, ok = parse_stamps(Window(buf, line_start, HEAD_WIDTH))
    ok &= (bracket > line_start + 20) & (bracket < line_start + MAX_HEADER)
    return date, sod, ok


def stream(line, iters, values, date, sod, keep=None, kind=None, name=None):
    """A stream of records (dict of columns, file order); `keep` selects rows."""
    cols = {"line": line, "iter": iters, "value": values, "date": date, "sod": sod}
    if kind is not None:
        cols.update(kind=kind, name=name)
    return {k: v[keep] for k, v in cols.items()} if keep is not None and not keep.all() else cols


def scan_train(buf, q, q_line, starts, ends, full=True):
    """Loss and lr streams from the `] Iteration N, loss = X` / `] Iteration N, lr = X` lines around each '=' at q.

    2014 Caffe prints `Iteration N, lr = X` on the line just before `Iteration N, loss = X`. Where the bytes of N
    match, the lr line takes N and the time stamp of its loss line, so only the loss line is decoded in full.
    """
    a = np.frombuffer(buf, np.uint8)
    kind = a[q - 2]  # the 'r' of "lr =" or the 's' of "loss =": each kind gets its own compact window
    loss_q, loss_line = q[kind == ord("s")], q_line[kind == ord("s")]
    lr_q, lr_line = q[kind == ord("r")], q_line[kind == ord("r")]

    def value_length(qs, lines):
        end = ends[lines]
        return end - qs - 2 - (a[end - 1] == CR)

    win = Window(buf, loss_q - MSG_BEFORE, MSG_WIDTH)
    eq = MSG_BEFORE
    ok = (win.word(eq - 7) == W_LOSS) & (win.byte(eq + 1) == SPACE)
    iters, bracket = iteration_before(win.words_at, eq - 8)
    values, value_ok = decode_values(win.word(eq + 2), win.byte(eq + 10), buf, loss_q + 2,
                                     value_length(loss_q, loss_line))
    ok &= value_ok & (iters >= 0)
    if full:
        date, sod, stamp_ok = stamps(buf, starts[loss_line], bracket + loss_q - eq)
        ok &= stamp_ok
    else:  # no stamps (read later where an iteration repeats): the header must just look like glog's
        line_start = starts[loss_line]
        header = bracket + loss_q - eq - line_start
        ok &= (header > 20) & (header < MAX_HEADER) & LEVELS[a[line_start]]
        date, sod = np.zeros(len(loss_q), np.int64), np.full(len(loss_q), np.nan)
    loss = stream(loss_line, iters, values, date, sod, keep=ok)
    if not full:  # the learning rate is left for a full parse; its lines are recognised, not decoded
        lr_ok = (a[lr_q - 3] == ord("l")) & (a[lr_q - 4] == SPACE) & (a[lr_q - 5] == ord(",")) & (a[lr_q + 1] == SPACE)
        return loss, stream(*(np.zeros(0, dt) for dt in (np.int64, np.int64, float, np.int64, float))), \
            taken(kind, ok, lr_ok)
    # lr lines (`, lr = X`): their own window, 8 bytes longer (X may need 16 bytes to tell one rate from the next).
    lw = Window(buf, lr_q - eq, LR_WIDTH)
    lr_ok = ((lw.word(eq - 5) & M6) == W_LR) & (lw.byte(eq + 1) == SPACE)
    lr_values, value_ok = decode_repeated(lw.word(eq + 2), lw.word(eq + 10), lw.byte(eq + 10), buf, lr_q + 2,
                                          value_length(lr_q, lr_line))
    lr_ok &= value_ok
    m, lead = len(lr_q), int(bool(len(loss_q)) and (not len(lr_q) or loss_q[0] < lr_q[0]))
    if m and ok.all() and len(loss_q) >= lead + m:
        partner = slice(lead, lead + m)
        if (loss_line[partner] == lr_line + 1).all() and (win.word(eq - 15)[partner] == lw.word(eq - 13)).all():
            # Every lr line is followed by its loss line (2014): the lr stream shares the loss stream's columns.
            lr = {"line": lr_line, "iter": loss["iter"][partner], "value": lr_values, "date": loss["date"][partner],
                  "sod": loss["sod"][partner]}
            return loss, (lr if lr_ok.all() else {k: v[lr_ok] for k, v in lr.items()}), taken(kind, ok, lr_ok)
    lr = pair_lr(buf, starts, lr_q, lr_line, lr_values, lr_ok, lw, loss_line, ok, win, iters, date, sod)
    return loss, lr, taken(kind, ok, lr_ok)


def pair_lr(buf, starts, lr_q, lr_line, lr_values, lr_ok, lw, loss_line, ok, win, iters, date, sod):
    """The lr stream in the general case: an lr line followed by a good loss line with the same N takes its N and
    stamp; any other (Caffe 1.0 prints lr after loss) is decoded in full. `lr_ok` is narrowed in place."""
    eq, m = MSG_BEFORE, len(lr_q)
    j = np.minimum(np.searchsorted(loss_line, lr_line + 1), max(len(loss_line) - 1, 0))
    paired = np.zeros(m, bool) if not len(loss_line) else (
        (loss_line[j] == lr_line + 1) & ok[j] & (win.word(eq - 15)[j] == lw.word(eq - 13)))
    own = np.flatnonzero(~paired)
    own_iters, own_bracket = iteration_before(lambda off: lw.words_at(off, own), eq - 6)
    own_date, own_sod, own_ok = stamps(buf, starts[lr_line[own]], own_bracket + lr_q[own] - eq)
    if len(loss_line):
        lr_iters, lr_date, lr_sod = iters[j], date[j], sod[j]  # (copies: fancy indexing)
    else:
        lr_iters, lr_date, lr_sod = np.zeros(m, np.int64), np.zeros(m, np.int64), np.zeros(m)
    lr_iters[own], lr_date[own], lr_sod[own] = own_iters, own_date, own_sod
    lr_ok[own] &= own_ok & (own_iters >= 0)
    return stream(lr_line, lr_iters, lr_values, lr_date, lr_sod, keep=lr_ok)


def taken(kind, loss_ok, lr_ok):
    """Which '=' gave a record (the others go to the per-line path)."""
    out = np.zeros(len(kind), bool)
    out[kind == ord("s")] = loss_ok
    out[kind == ord("r")] = lr_ok
    return out


def scan_tests(buf, t, t_line, starts, ends):
    """Stream of `] Test score #K: X` (K, X) and `] Iteration N, Testing net` (N) at each 'T' position t."""
    size = len(buf)
    words, a = words_view(buf), np.frombuffer(buf, np.uint8)
    at = words.__getitem__
    is_score = (at(t) == W_TEST_SCORE) & ((at(t + 8) & M4) == W_RE_HASH) & ((at(t + 13) & M2) == word(b": "))
    index = a[t + 12].astype(np.int64) - 48
    scores, exact = parse_decimals(at(t + 15), a[np.minimum(t + 23, size - 1)], ends[t_line] - t - 15)
    is_score &= (index >= 0) & (index <= 9) & exact & ((at(t - 2) & M2) == W_BRACKET)
    is_testing = (at(t) == W_TESTING) & ((at(t + 8) & M4) == W_NET_NL) & ((at(t - 2) & M2) == word(b", "))
    t_iter, t_bracket = iteration_before(at, t - 3)
    is_testing &= t_iter >= 0
    date, sod, ok = stamps(buf, starts[t_line], np.where(is_score, t - 2, t_bracket))
    ok &= is_score | is_testing
    return ok, stream(t_line, np.where(is_score, index, t_iter), np.where(is_score, scores, np.nan), date, sod, keep=ok,
                  kind=np.where(is_score, SCORE, TESTING).astype(np.int8),
                  name=np.where(is_score, -1 - index, 0).astype(np.int16))


def scan_fast(buf: bytes, full=True):
    """Streams of the common line shapes ("loss", "lr", "tests"), plus the line numbers left for the per-line path."""
    size = len(buf)
    a = np.frombuffer(buf, np.uint8)
    newlines, q, q_line, t, t_line = split_lines(a)
    if size < 4 * EDGE:  # the windows need room; nothing this close to the ends is read by the fast path anyway
        buf = buf + b"\0" * (4 * EDGE)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [size]))
    inner_q = (q >= EDGE) & (q < size - EDGE) & alone_per_line(q_line)
    loss, lr, q_taken = scan_train(buf, q[inner_q], q_line[inner_q], starts, ends, full)
    first_t = first_per_line(t_line)
    inner_t = (t >= EDGE) & (t < size - EDGE) & first_t
    t_taken, tests = scan_tests(buf, t[inner_t], t_line[inner_t], starts, ends)
    # Lines left for the per-line path: every line with a '=' or 'T' that gave no record here (few).
    q_rest = np.ones(len(q), bool)
    q_rest[np.flatnonzero(inner_q)[q_taken]] = False
    t_rest = first_t.copy()
    t_rest[np.flatnonzero(inner_t)[t_taken]] = False
    leftover = np.unique(np.concatenate((q_line[q_rest], t_line[t_rest])))
    for done in (loss["line"], lr["line"]):  # a line both paths could claim (a 'T' in a train line's header)
        leftover = leftover[~contains_sorted(done, leftover)]
    return {"loss": loss, "lr": lr, "tests": tests}, leftover, starts, ends


def read_other(buf, words, start, end):
    """float() of the values the word parser left (an unreadable one is NaN and not ok)."""
    length = end - start
    short = length <= 8
    keys = (words & low_mask(length))[short].tolist()
    known = {k: lines_mod.read_float(int(k).to_bytes(8, "little").rstrip(b"\0")) for k in set(keys)}
    out = np.full(len(start), None, dtype=object)
    out[short] = [known[k] for k in keys]
    for i in np.flatnonzero(~short):
        out[i] = lines_mod.read_float(buf[start[i]:end[i]])
    ok = out != None  # noqa: E711 (elementwise)
    return np.where(ok, out, np.nan).astype(np.float64), ok


def contains_sorted(ordered, needles):
    """Mask of the needles present in the sorted array `ordered`."""
    if not len(ordered):
        return np.zeros(len(needles), bool)
    found = np.searchsorted(ordered, needles)
    return (found < len(ordered)) & (ordered[np.minimum(found, len(ordered) - 1)] == needles)


def join_logs(texts):
    """One buffer of several logs (each ends with a newline) and the byte offset where each starts; a log that did
    not end with a newline (cut off mid-line) gets one, and the line is marked unterminated."""
    parts, offsets, cut, at = [], [], [], 0
    for text in texts:
        offsets.append(at)
        cut.append(bool(text) and not text.endswith(b"\n"))
        parts.append(text + b"\n" if cut[-1] else text)
        at += len(parts[-1])
    return b"".join(parts), offsets, cut


def with_slow(streams, slow):
    """The fast streams with the per-line path's records (tuples of COLUMNS) merged in, in file order."""
    if not slow:
        return streams
    cols = {k: np.array([r[j] for r in slow]) for j, k in enumerate(COLUMNS)}
    out = dict(streams)
    for label, kinds in (("loss", (LOSS,)), ("lr", (LR,)), ("tests", (TESTING, SCORE))):
        pick = (cols["kind"] == kinds[0]) | (cols["kind"] == kinds[-1])
        if not pick.any():
            continue
        lines, fast_lines = cols["line"][pick], streams[label]["line"]
        if not len(fast_lines) or ((lines < fast_lines[0]) | (lines > fast_lines[-1])).all():
            before = lines < (fast_lines[0] if len(fast_lines) else 0)  # records at the edges: no sort needed
            out[label] = {k: np.concatenate((cols[k][pick][before].astype(v.dtype), v,
                                             cols[k][pick][~before].astype(v.dtype)))
                          for k, v in streams[label].items()}
            continue
        both = {k: np.concatenate((v, cols[k][pick].astype(v.dtype))) for k, v in streams[label].items()}
        order = np.argsort(both["line"], kind="stable")
        out[label] = {k: v[order] for k, v in both.items()}
    return out


def scan_buffer(buf: bytes, hints, offsets=(0,), cut=None, full=True) -> dict:
    """Every record of the logs joined in `buf` (see join_logs; `hints[i]` is log i's year hint), times resolved
    per log, garbled lines counted per log. One scan per net: numpy's fixed costs are paid once, not per file.

    full=False leaves out the learning rate and the loss lines' time stamps, except where an iteration repeats
    (a restart), since the latest record of those must win."""
    if cut is None:  # a single log as it is
        cut = [bool(buf) and not buf.endswith(b"\n")]
        buf = buf + b"\n" if cut[0] else buf
    fast, leftover, starts, ends = scan_fast(buf, full)
    first_line = np.searchsorted(ends, np.asarray(offsets, np.int64))  # line number where each log starts
    line_ends = np.r_[first_line[1:], len(starts) - 1 if buf.endswith(b"\n") or not buf else len(starts)]
    unterminated = {int(line_ends[i] - 1) for i, c in enumerate(cut) if c}
    if unterminated:
        cut_lines = np.array(sorted(unterminated))
        fast = {label: {k: v[~np.isin(s["line"], cut_lines)] for k, v in s.items()} for label, s in fast.items()}
        leftover = np.union1d(leftover, cut_lines)
    slow, outputs, bad = lines_mod.scan_lines(buf, leftover, starts, ends, unterminated)
    streams = with_slow(fast, slow)
    if not full:
        stamp_repeats(buf, streams["loss"], starts)
    for s in streams.values():
        s["file"] = np.searchsorted(first_line, s["line"], side="right") - 1
        s["time"] = resolve(s, hints, len(offsets))
    out = assemble(streams, outputs, len(offsets))
    bad_file = np.searchsorted(first_line, np.array([n for n, _ in bad], np.int64), side="right") - 1
    out["files"] = [{"lines": int(line_ends[i] - first_line[i]),
                     "bad": int((bad_file == i).sum()) + int(out["orphans"][i]),
                     "bad_examples": [(n - int(first_line[i]) + 1, text[:160].decode("utf-8", "replace"))
                                      for (n, text), f in zip(bad, bad_file) if f == i][:5]}
                    for i in range(len(offsets))]
    return out


def resolve(s, hints, nfiles):
    """Times of a stream's records, log by log (each has its own year hint); NaN where there is no stamp."""
    stamped = np.isfinite(s["sod"])
    everything = bool(stamped.all())
    file_of = s["file"] if everything else s["file"][stamped]
    date, sod = (s["date"], s["sod"]) if everything else (s["date"][stamped], s["sod"][stamped])
    bounds = np.searchsorted(file_of, np.arange(nfiles + 1))
    times = np.concatenate([lines_mod.resolve_times(date[a:b], sod[a:b], hint)
                            for a, b, hint in zip(bounds[:-1], bounds[1:], hints)] or [np.zeros(0)])
    if everything:
        return times
    out = np.full(len(stamped), np.nan)
    out[stamped] = times
    return out


def stamp_repeats(buf, loss, starts):
    """Read the stamps of the loss records whose iteration repeats (restarts), so the latest can win."""
    iters = loss["iter"]
    if len(iters) < 2 or bool((iters[1:] > iters[:-1]).all()):
        return
    order = np.argsort(iters, kind="stable")
    same = iters[order][1:] == iters[order][:-1]
    repeated = np.zeros(len(iters), bool)
    repeated[order[1:][same]] = True
    repeated[order[:-1][same]] = True
    rows = np.flatnonzero(repeated & np.isnan(loss["sod"]))
    date, sod, ok = parse_stamps(Window(buf, starts[loss["line"][rows]], HEAD_WIDTH))
    loss["date"] = loss["date"].copy()
    loss["sod"] = loss["sod"].copy()
    loss["date"][rows], loss["sod"][rows] = date, np.where(ok, sod, -np.inf)


def runs(iters, file_of):
    """Which run each record (in file order) comes from: file index * 2**20 + restarts within that file so far
    (a restart shows as the iteration going back)."""
    back = np.zeros(len(iters), np.int64)
    back[1:] = (iters[1:] < iters[:-1]) & (file_of[1:] == file_of[:-1])
    count = np.cumsum(back)
    if not len(iters):
        return count
    first = np.searchsorted(file_of, np.arange(int(file_of[-1]) + 1))  # where each file's records start
    return (file_of.astype(np.int64) << 20) + count - count[first][file_of]


def assemble(streams, outputs, nfiles):
    """"series": "loss", "lr" and ("test", name) -> (iteration, value, time, run); test outputs take the iteration
    of the `Testing net` line before them in the same file (one without is an orphan: counted as garbled)."""
    series = {}
    for label in ("loss", "lr"):
        s = streams[label]
        series[label] = (s["iter"], s["value"], s["time"], runs(s["iter"], s["file"]))
    s = streams["tests"]
    testing = np.flatnonzero(s["kind"] == TESTING)
    score = np.flatnonzero(s["kind"] == SCORE)
    owner = np.searchsorted(testing, score) - 1
    orphan = (owner < 0) | (s["file"][testing[np.maximum(owner, 0)]] != s["file"][score]) if len(testing) else \
        np.ones(len(score), bool)
    orphans = np.bincount(s["file"][score[orphan]], minlength=nfiles)
    score, owner = score[~orphan], owner[~orphan]
    codes = s["name"][score]
    seen = sorted(set(codes.tolist()), key=lambda c: (c >= 0, -c if c < 0 else c))  # 2014 scores by index first
    tests = {}
    for code in seen:
        name = lines_mod.SCORE_NAMES_2014.get(-1 - code, f"score{-1 - code}") if code < 0 else outputs[code]
        tests.setdefault(name, []).append(np.flatnonzero(codes == code))
    for name, parts in tests.items():
        rows = np.sort(np.concatenate(parts))
        t_iter = s["iter"][testing[owner[rows]]]
        series[("test", name)] = (t_iter, s["value"][score[rows]], s["time"][score[rows]],
                                  runs(t_iter, s["file"][score[rows]]))
    return {"series": series, "test_names": list(tests), "orphans": orphans}
