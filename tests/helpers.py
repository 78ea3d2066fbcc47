"""What several test files share: the `xfer` command run as a subprocess, and Caffe logs written as the 2014
Caffe wrote them (for the parser, summary and figure tests)."""
import datetime
import gzip
import os
import re
import subprocess
import sys

START = datetime.datetime(2014, 4, 3, 6, 0, 0)


def xfer(*args, **kwargs):
    """`xfer ARGS` run by this Python (`python -m xfer.cli`), output captured as text."""
    return subprocess.run([sys.executable, "-m", "xfer.cli", *args], capture_output=True, text=True, **kwargs)


def stamp(when, year_in_stamp):
    return when.strftime("%Y%m%d %H:%M:%S.%f" if year_in_stamp else "%m%d %H:%M:%S.%f")


def line(when, src, msg, year_in_stamp=False, tid=23304):
    return f"I{stamp(when, year_in_stamp)} {tid:>5} {src}] {msg}\n"


def run_2014(start, first, last, loss, acc=None, step=20, test_every=1000, seconds=35.0):
    """Lines as 2014 Caffe wrote them: lr then loss per displayed iteration; at test iterations the test after."""
    out, when = [], start
    for it in range(first, last + 1, step):
        out.append(line(when, "solver.cpp:217", f"Iteration {it}, lr = {lr_at(it)}"))
        out.append(line(when + datetime.timedelta(seconds=0.15), "solver.cpp:74", f"Iteration {it}, loss = {loss(it)}"))
        if acc and it % test_every == 0:
            out.append(line(when + datetime.timedelta(seconds=0.2), "solver.cpp:96", f"Iteration {it}, Testing net"))
            out.append(line(when + datetime.timedelta(seconds=130), "solver.cpp:123", f"Test score #0: {acc(it)}"))
            out.append(line(when + datetime.timedelta(seconds=130.01), "solver.cpp:123",
                            f"Test score #1: {float(loss(it)) + 1:g}"))
        when += datetime.timedelta(seconds=seconds)
    return "".join(out)


def lr_at(it):
    return f"{0.01 * 0.1 ** (it // 100000):g}"


def write(path, text, gz=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def accuracy_run(name, accs, losses, train_losses, folder):
    """A log whose tests at 1000, 2000, ... give `accs` / `losses`, whose train losses are `train_losses`."""
    rows = []
    for i, (acc, loss) in enumerate(zip(accs, losses)):
        it = 1000 * (i + 1)
        when = START + datetime.timedelta(hours=i)
        rows.append(line(when, "solver.cpp:217", f"Iteration {it}, lr = 0.01"))
        rows.append(line(when, "solver.cpp:74", f"Iteration {it}, loss = {train_losses[i]}"))
        rows.append(line(when, "solver.cpp:96", f"Iteration {it}, Testing net"))
        rows.append(line(when, "solver.cpp:123", f"Test score #0: {acc}"))
        rows.append(line(when, "solver.cpp:123", f"Test score #1: {loss}"))
    write(folder / name / f"140403_060000_{name}.o1", "".join(rows))


def pids_where(match) -> list:
    """Pids of the processes for whose /proc folder `match(path)` is true (a process gone meanwhile: skipped)."""
    found = []
    for entry in (name for name in os.listdir("/proc") if name.isdigit()):
        try:
            if match(f"/proc/{entry}"):
                found.append(int(entry))
        except OSError:  # gone meanwhile
            continue
    return found


def argv0(proc) -> bytes:
    return os.path.basename(open(f"{proc}/cmdline", "rb").read().split(b"\0")[0])


def caffe_pids(folder) -> list:
    """Pids of the `caffe` processes whose working folder is `folder` (the net folder a trainer runs Caffe in)."""
    want = os.path.realpath(folder)
    return pids_where(lambda proc: argv0(proc) in (b"caffe", b"caffe.bin") and os.readlink(f"{proc}/cwd") == want)


RESUMED = re.compile(r"Resuming from caffe_imagenet_train_iter_(\d+)\.solverstate")


def trained_twice(folder) -> int:
    """Iterations a net trained more than once, read from its Caffe logs: per restart, from where it resumed
    (0 when it started afresh) to where the run before it got (its last logged iteration or snapshot; a crash
    between two display lines trained up to `display` iterations more than this counts)."""
    from xfer.logs import tail
    logs = [log.read_text() for log in tail.log_files(folder)]
    twice = 0
    for before, after in zip(logs, logs[1:]):
        found = re.findall(r"\] Iteration (\d+)|binary proto file \S+_iter_(\d+)\.caffemodel", before)
        reached = max([int(shown or saved) for shown, saved in found] or [0])
        resumed = RESUMED.search(after)
        twice += max(0, reached - (int(resumed.group(1)) if resumed else 0))
    return twice


def kill_if_running(proc) -> None:
    """In a test's `finally`: a child (and its process group, when it leads one) left running by a failed assertion
    is killed, so that it does not go on training after the test."""
    import os
    import signal
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL) if os.getpgid(proc.pid) == proc.pid else proc.kill()
        except ProcessLookupError:
            pass
        proc.wait()


DISPLAY_STAMP = re.compile(r"^I(\d{8} \d\d:\d\d:\d\d\.\d+) .*\] Iteration (\d+) \(", re.M)  # glog 0.6 display lines


def iterations_per_second(out, tiny_render) -> float:
    """The mini net's speed on this machine now: real `caffe train` for a few seconds, rate from glog's stamps."""
    import signal
    import time
    from xfer import caffeenv
    from xfer.run import train
    folder = tiny_render(out, ["half0A"], max_iter=10 ** 7, snapshot=0, test_interval=10 ** 7, display=100) / "half0A"
    with open(folder / "calibrate.log", "wb") as log:
        proc = subprocess.Popen([caffeenv.tool("caffe"), "train", "-solver", train.solver_for(folder, "cpu")],
                                cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=train.caffe_env())
        time.sleep(5)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    stamps = [(datetime.datetime.strptime(s, "%Y%m%d %H:%M:%S.%f"), int(it))
              for s, it in DISPLAY_STAMP.findall((folder / "calibrate.log").read_text())]
    (t0, i0), (t1, i1) = stamps[1], stamps[-1]  # from the second display on: start-up left out
    return (i1 - i0) / (t1 - t0).total_seconds()
