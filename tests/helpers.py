"""What several test files share: the `xfer` command run as a subprocess, and Caffe logs written as the 2014
Caffe wrote them (for the parser, summary and figure tests)."""
import datetime
import gzip
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


def caffe_pids(folder) -> list:
    """Pids of the `caffe` processes whose working folder is `folder` (the net folder a trainer runs Caffe in)."""
    import os
    found, want = [], os.path.realpath(folder)
    for entry in (name for name in os.listdir("/proc") if name.isdigit()):
        try:
            argv0 = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")[0]
            if os.path.basename(argv0) in (b"caffe", b"caffe.bin") and os.readlink(f"/proc/{entry}/cwd") == want:
                found.append(int(entry))
        except OSError:  # gone meanwhile
            continue
    return found
