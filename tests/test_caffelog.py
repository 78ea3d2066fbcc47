"""The log parser: both formats, gzip, restarts (latest wins, across a year boundary), garbled lines, the cache,
the vectorised path against a plain per-line reading, and the paper's own logs."""
import datetime
import gzip
import os
import re

import numpy as np
import pytest

from helpers import line, lr_at, run_2014, write
from xfer.logs import cache as parse_cache
from xfer.logs import parser

EPOCH = datetime.datetime(1970, 1, 1)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XFER_CACHE", str(tmp_path / "cache"))


def run_caffe1(start, first, last, loss, acc, step=4, test_every=12):
    """Lines as Caffe 1.0 with glog 0.6 writes them (solver.cpp / sgd_solver.cpp), the year in each stamp."""
    out, when = [], start
    for it in range(first, last + 1, step):
        if it % test_every == 0:
            out.append(line(when, "solver.cpp:330", f"Iteration {it}, Testing net (#0)", True))
            out.append(line(when, "solver.cpp:397", f"    Test net output #0: accuracy = {acc(it)}", True))
            out.append(line(when, "solver.cpp:397",
                            f"    Test net output #1: loss = {loss(it)} (* 1 = {loss(it)} loss)", True))
        out.append(line(when, "solver.cpp:218", f"Iteration {it} (2.5 iter/s, 1.6s/{step} iters), loss = {loss(it)}",
                        True))
        out.append(line(when, "solver.cpp:237", f"    Train net output #0: loss = {loss(it)} (* 1 = {loss(it)} loss)",
                        True))
        out.append(line(when, "sgd_solver.cpp:105", f"Iteration {it}, lr = {lr_at(it)}", True))
        when += datetime.timedelta(seconds=1.6)
    return "".join(out)


def loss_a(it):
    return f"{6.9 * np.exp(-it / 90000) + 0.01 * (it % 7):g}"


def acc_a(it):
    return f"{0.6 * (1 - np.exp(-it / 60000)) + 0.001 * (it % 3):g}"


def seconds(when):
    return (when - EPOCH).total_seconds()


def test_2014_log_gz_with_restart(tmp_path):
    net = tmp_path / "transfer0A0B_1_3"
    start = datetime.datetime(2014, 4, 3, 6, 46, 22, 569109)
    write(net / "140403_063910_transfer0A0B.o1.gz", run_2014(start, 20, 6000, loss_a, acc_a), gz=True)
    # The restart resumes from the 4000 snapshot: iterations 4020..6000 run again, later, with other numbers.
    restart = datetime.datetime(2014, 4, 5, 1, 0, 0)
    write(net / "140403_063910_transfer0A0B.o2.gz",
          run_2014(restart, 4020, 9000, lambda it: f"{float(loss_a(it)) / 2:g}", acc_a), gz=True)
    log = parser.parse_net_dir(net)
    assert [f.bad_lines for f in log.files] == [0, 0] and log.problems() == []
    assert log.loss.iter.tolist() == list(range(20, 9001, 20))
    assert log.loss.value[log.loss.iter == 3000][0] == float(loss_a(3000))
    assert log.loss.value[log.loss.iter == 5000][0] == float(loss_a(5000)) / 2  # the restart's value won
    assert log.lr.value[0] == 0.01 and len(log.lr) == len(log.loss)
    assert list(log.tests) == ["accuracy", "loss"]
    assert log.tests["accuracy"].iter.tolist() == list(range(1000, 9001, 1000))
    assert log.tests["accuracy"].value[2] == float(acc_a(3000))
    assert log.loss.time[0] == pytest.approx(seconds(start + datetime.timedelta(seconds=0.15)), abs=1e-6)
    assert log.last_iter == 9000
    iters, rate = log.seconds_per_iter()
    assert np.allclose(rate, 35.0 / 20) and 4020 not in iters.tolist()  # no interval across the restart


def test_summary_detail_is_lazy_and_equal(tmp_path):
    """detail="summary" (what `xfer summary` asks for) skips the lr lines and most stamps, yet picks the same latest
    records at a restart; asking for times or the lr then parses in full, once, and caches that."""
    net = tmp_path / "transfer1A1B_1_2"
    write(net / "140410_000000_transfer1A1B.o1", run_2014(datetime.datetime(2014, 4, 10), 20, 5000, loss_a, acc_a))
    write(net / "140410_000000_transfer1A1B.o2",  # the restart repeats 3020..5000 with other numbers
          run_2014(datetime.datetime(2014, 4, 12), 3020, 7000, lambda it: f"{float(loss_a(it)) + 1:g}", acc_a))
    quick = parser.parse_net_dir(net, detail="summary")
    full = parser.parse_net_dir(net, cache=False)
    assert quick.detail == "summary" and not quick.lr.known and quick.last_iter == full.last_iter == 7000
    assert quick.loss.iter.tolist() == full.loss.iter.tolist() and quick.loss.value.tolist() == full.loss.value.tolist()
    assert quick.loss.lowest(10).tolist() == full.loss.lowest(10).tolist()
    assert parse_cache.load(net, parse_cache.key_of(parser.find_logs(net)), "full") is None
    assert quick.loss.time.tolist() == full.loss.time.tolist() and quick.lr.value.tolist() == full.lr.value.tolist()
    assert parser.parse_net_dir(net).detail == "full"  # the full parse went to the cache
    assert parser.parse_net_dir(net, detail="summary").detail == "full"  # and serves summaries too


def test_caffe1_log_names_and_stamps(tmp_path):
    net = tmp_path / "half0A"
    start = datetime.datetime(2026, 11, 25, 19, 16, 3, 289494)
    text = "Log file created at: 2026/11/25 19:16:03\nRunning on machine: vm\n"
    text += run_caffe1(start, 0, 48, loss_a, acc_a)
    text += line(start + datetime.timedelta(minutes=1), "solver.cpp:310", "Iteration 48, loss = 0.5", True)
    write(net / "261125_191603_half0A.log", text)
    log = parser.parse_net_dir(net)
    assert log.bad_lines == 0
    assert log.loss.iter.tolist() == list(range(0, 49, 4))
    assert log.loss.value[-1] == 0.5  # the final `Iteration N, loss` line is later than the display of 48
    assert log.lr.iter.tolist() == list(range(0, 49, 4))
    assert log.tests["accuracy"].iter.tolist() == [0, 12, 24, 36, 48]
    assert log.tests["loss"].value[1] == float(loss_a(12))
    assert log.loss.time[0] == pytest.approx(seconds(start), abs=1e-6)


def test_year_boundary_restart_and_rollover(tmp_path):
    """2014 stamps have no year: the first log runs past midnight on Dec 31, the restart from iteration 980 is on
    Jan 2 and must win over the first run's 980..1000, not count as 11 months older."""
    net = tmp_path / "half1A"
    dec = datetime.datetime(2014, 12, 31, 23, 30, 0)
    write(net / "141231_232900_half1A.o1", run_2014(dec, 20, 1000, loss_a, acc_a, seconds=60))
    jan = datetime.datetime(2015, 1, 2, 9, 0, 0)
    write(net / "141231_232900_half1A.o2", run_2014(jan, 980, 1500, lambda it: "0.125", acc_a, seconds=60))
    log = parser.parse_net_dir(net)
    assert log.loss.value[log.loss.iter == 960][0] == float(loss_a(960))
    assert (log.loss.value[log.loss.iter >= 980] == 0.125).all()
    assert np.all(np.diff(log.loss.time) > 0)
    when = {it: datetime.datetime.utcfromtimestamp(log.loss.time[log.loss.iter == it][0]) for it in (20, 960, 1500)}
    assert (when[20].date(), when[960].date(), when[1500].date()) == \
        (datetime.date(2014, 12, 31), datetime.date(2015, 1, 1), datetime.date(2015, 1, 2))


def test_garbled_lines_are_counted_not_fatal(tmp_path):
    net = tmp_path / "transfer0B0A_1_2"
    start = datetime.datetime(2014, 5, 1, 10, 0, 0)
    good = run_2014(start, 20, 2000, loss_a, acc_a).splitlines(keepends=True)
    good[10] = good[10][:40] + good[11]  # two lines run together (interleaved writes)
    good[21] = good[21].replace("loss = ", "loss = x")  # a value that is not a number
    good[30] = "\x00\x00\x00garbage \xff\n"
    text = "".join(good) + line(start + datetime.timedelta(hours=9), "solver.cpp:123", "Test score #0: 0.61")[:-5]
    write(net / "140501_095900_transfer0B0A.o7", text)
    log = parser.parse_net_dir(net)
    assert log.bad_lines == 3  # the joined line, the bad value, the unterminated last line (binary junk is noise)
    assert len(log.loss) == 99 and len(log.lr) == 98 and log.tests["accuracy"].iter.tolist() == [1000, 2000]
    assert any("garbled" in p for p in log.problems())


def test_crlf_line_ends(tmp_path):
    text = run_2014(datetime.datetime(2014, 4, 3), 20, 2000, loss_a, acc_a).replace("\n", "\r\n")
    write(tmp_path / "half0A" / "140403_000000_half0A.o1", text)
    log = parser.parse_net_dir(tmp_path / "half0A")
    assert log.bad_lines == 0 and len(log.loss) == len(log.lr) == 100 and len(log.tests["accuracy"]) == 2
    assert log.loss.value[0] == float(loss_a(20))


def test_empty_and_crashed(tmp_path):
    (tmp_path / "half2A").mkdir()
    empty = parser.parse_net_dir(tmp_path / "half2A")
    assert empty.files == [] and empty.problems() == ["no training logs in the folder"] and empty.last_iter == 0
    crashed = tmp_path / "half2B"
    write(crashed / "140403_064216_half2B.o5.gz", run_2014(datetime.datetime(2014, 4, 3), 20, 400, loss_a), gz=True)
    write(crashed / "140403_064216_half2B.o6.gz", "", gz=True)  # a job that died before writing anything
    log = parser.parse_net_dir(crashed)
    assert len(log.loss) == 20 and log.tests == {} and "no test yet" in log.problems()[0]
    truncated = tmp_path / "half3A"
    data = gzip.compress(run_2014(datetime.datetime(2014, 4, 3), 20, 4000, loss_a, acc_a).encode())
    write(truncated / "140403_064222_half3A.o1.gz", "").write_bytes(data[:len(data) // 2])
    cut = parser.parse_net_dir(truncated)
    assert cut.files[0].truncated and len(cut.loss) > 10 and any("ends early" in p for p in cut.problems())


def reference_records(text):
    """A plain per-line reading of the lines the parser handles, to compare the vectorised path against."""
    out = []
    for row in text.splitlines():
        m = re.match(r"I(\d{4}|\d{8}) \S+\s+\d+ \S+\] Iteration (\d+), (lr|loss) = (\S+)$", row)
        if m:
            out.append((m[3], int(m[2]), float(m[4])))
    return out


def test_vectorised_path_matches_plain_reading(tmp_path):
    """Random values in every shape ostream prints (6 significant digits, exponents, nan, negatives, long
    iterations) and random header widths: the fast path's numbers equal float() of the text."""
    rng = np.random.RandomState(7)
    rows, when = [], datetime.datetime(2014, 6, 1)
    for i in range(3000):
        it = int(rng.choice([rng.randint(0, 100), rng.randint(0, 10 ** 7)]))
        kind = rng.choice(["lr", "loss"])
        value = rng.choice([f"{rng.uniform(0, 10):g}", f"{rng.uniform(0, 1e-3):g}", f"{rng.uniform(-5, 0):g}",
                            f"{10 ** rng.uniform(-8, 8):g}", "nan", "-nan", "inf", f"{rng.randint(0, 100)}",
                            f"{rng.uniform(0, 1):.8f}"])
        when += datetime.timedelta(seconds=float(rng.uniform(0, 100)))
        rows.append(line(when, rng.choice(["solver.cpp:74", "s.cpp:1", "sgd_solver.cpp:105"]),
                         f"Iteration {it}, {kind} = {value}", bool(rng.rand() < 0.5), tid=int(rng.randint(1, 10 ** 7))))
    text = "".join(rows)
    write(tmp_path / "net" / "140601_000000_net.log", text)
    (info,), scanned = parser.parse_logs([tmp_path / "net" / "140601_000000_net.log"])
    got = []
    for kind in ("lr", "loss"):
        iters, values = scanned["series"][kind][:2]
        got += [(kind, int(i), float(v)) for i, v in zip(iters, values)]
    want = reference_records(text)
    assert info.bad_lines == 0 and len(got) == len(want)
    got.sort(key=lambda r: (r[0], r[1]))
    want.sort(key=lambda r: (r[0], r[1]))
    for g, w in zip(got, want):
        assert g[:2] == w[:2] and (g[2] == w[2] or (np.isnan(g[2]) and np.isnan(w[2])))


def test_cache_is_keyed_by_size_and_mtime(tmp_path):
    net = tmp_path / "half0B"
    path = write(net / "140403_064121_half0B.o1", run_2014(datetime.datetime(2014, 4, 3), 20, 2000, loss_a, acc_a))
    cold = parser.parse_net_dir(net)
    warm = parser.parse_net_dir(net)
    assert warm.loss._arrays is None  # served from the cache: the train arrays are read only when used
    assert warm.loss.iter.tolist() == cold.loss.iter.tolist() and warm.tests["accuracy"].value.tolist() == \
        cold.tests["accuracy"].value.tolist()
    with open(path, "a") as handle:  # the run goes on: the log grows
        handle.write(run_2014(datetime.datetime(2014, 4, 4), 2020, 3000, loss_a, acc_a))
    grown = parser.parse_net_dir(net)
    assert grown.last_iter == 3000 and len(grown.loss) == 150 and grown.loss.iter[-1] == 3000
    os.utime(path, ns=(1, 1))  # same size, other mtime: parsed again, never served stale
    assert parse_cache.load(net, parse_cache.key_of(parser.find_logs(net))) is None
    parse_cache.entry_base(net).with_suffix(".pkl").write_bytes(b"not a pickle")
    assert parser.parse_net_dir(net).last_iter == 3000


def test_parse_tree_parallel_equals_serial(tmp_path):
    for i, name in enumerate(["half0A", "half0B", "transfer0A0B_1_1", "transfer0A0B_1_2"]):
        write(tmp_path / name / f"140403_06391{i}_{name}.o1.gz",
              run_2014(datetime.datetime(2014, 4, 3), 20, 3000 + 1000 * i, loss_a, acc_a), gz=True)
    (tmp_path / "netbase").mkdir()
    serial = parser.parse_tree(tmp_path, cache=False, workers=1)
    parallel = parser.parse_tree(tmp_path, cache=True, workers=2)
    assert list(serial) == list(parallel) == ["half0A", "half0B", "netbase", "transfer0A0B_1_1", "transfer0A0B_1_2"]
    for name in serial:
        assert serial[name].loss.value.tolist() == parallel[name].loss.value.tolist()
    assert parser.parse_tree(tmp_path, nets=["half*"]).keys() == {"half0A", "half0B"}


def test_paper_logs_restart_and_measures(paper_dir):
    """half0A's second job re-ran 280020..286180: those iterations come from it (the later stamps)."""
    log = parser.parse_net_dir(paper_dir / "results" / "half0A", cache=False)
    assert len(log.loss) == 22500 and len(log.tests["accuracy"]) == 450 and log.bad_lines == 0
    second = gzip.decompress((paper_dir / "results" / "half0A" / "140403_063910_half0A.o239566.gz").read_bytes())
    redone = {int(m[1]): float(m[2]) for m in re.finditer(rb"Iteration (\d+), loss = (\S+)", second)}
    for it in (280020, 283000, 286180):
        assert log.loss.value[log.loss.iter == it][0] == redone[it]
    assert np.mean(np.sort(log.tests["accuracy"].value)[-10:]) == pytest.approx(0.6151, abs=1e-4)
