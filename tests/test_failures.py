"""The rule that sorts failures (xfer/run/failures.py), case by case on real `caffe train` runs that really fail:
killed by SIGKILL and SIGSEGV, out of host memory, a crop larger than the images, a net that does not connect, data
that is not there, a label out of range; and what `xfer train --retries N` does with each."""
import json
import os
import resource
import signal
import subprocess
import sys
import time

import pytest

from helpers import kill_if_running, xfer
from xfer import caffeenv
from xfer.logs import tail
from xfer.run import failures, train

pytestmark = pytest.mark.caffe
NEVER = 10 ** 7  # max_iter / intervals that never come


def start_caffe(folder, limit_memory=None):
    log = folder / "caffe.log"

    def limits():
        if limit_memory:
            resource.setrlimit(resource.RLIMIT_AS, (limit_memory, limit_memory))
    with open(log, "wb") as out:
        proc = subprocess.Popen([caffeenv.tool("caffe"), "train", "-solver", train.solver_for(folder, "cpu")],
                                cwd=folder, stdout=out, stderr=subprocess.STDOUT, env=train.caffe_env(),
                                preexec_fn=limits)
    return proc, log


def killed_while_training(folder, signum):
    proc, log = start_caffe(folder)
    try:
        deadline = time.monotonic() + 60
        while "Iteration 20," not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.05)
        proc.send_signal(signum)
        proc.wait(timeout=60)
    finally:
        kill_if_running(proc)
    return proc.returncode, log


def failed_at_start(folder, **kwargs):
    proc, log = start_caffe(folder, **kwargs)
    proc.wait(timeout=120)
    return proc.returncode, log


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{path} has no {old!r}"
    path.write_text(text.replace(old, new, 1))


def test_death_by_a_signal_may_pass(tmp_path, tiny_render):
    folder = tiny_render(tmp_path, ["half0A"], max_iter=NEVER, snapshot=0, test_interval=NEVER, display=10) / "half0A"
    for signum in (signal.SIGKILL, signal.SIGSEGV):
        code, log = killed_while_training(folder, signum)
        assert code == -signum
        verdict = failures.classify(code, log)
        assert verdict == failures.Verdict(True, f"caffe was killed by {signal.Signals(signum).name}")
    assert "SIGSEGV" in log.read_text()  # glog's failure handler said it, and Caffe died of it: no fatal line


def test_host_memory_that_runs_out_may_pass(tmp_path, tiny_render):
    # A batch of 200,000 images (440 MB a copy) under a 1.5 GB address-space limit: Caffe's host allocation fails.
    folder = tiny_render(tmp_path, ["half0A"], train_batch=200000) / "half0A"
    code, log = failed_at_start(folder, limit_memory=1500 * 2 ** 20)
    assert code != 0
    verdict = failures.classify(code, log)
    assert verdict.may_pass, (verdict, log.read_text()[-1500:])
    assert "host allocation of size" in verdict.reason or "bad_alloc" in verdict.reason
    assert verdict.reason in log.read_text() or "bad_alloc" in log.read_text()


@pytest.mark.parametrize("case, breakage, caffe_says", [
    ("crop larger than the images", ("imagenet_train.prototxt", "transform_param {",
                                     "transform_param {\n    crop_size: 64"),
     "Check failed: datum_height >= crop_size (28 vs. 64)"),
    ("a net that does not connect", ("imagenet_train.prototxt", 'bottom: "pool1"', 'bottom: "nosuchblob"'),
     "Unknown bottom blob 'nosuchblob'"),
])
def test_a_broken_net_cannot_pass(tmp_path, tiny_render, case, breakage, caffe_says):
    folder = tiny_render(tmp_path, ["half0A"]) / "half0A"
    edit(folder / breakage[0], *breakage[1:])
    code, log = failed_at_start(folder)
    verdict = failures.classify(code, log)
    assert code == -signal.SIGABRT and not verdict.may_pass  # glog aborts after its fatal line
    assert caffe_says in verdict.reason and verdict.reason in log.read_text()


def test_a_label_out_of_range_cannot_pass(tmp_path, tiny_render):
    """fc8 of 2 outputs for labels 0..4, past the kit's check (it refuses this before Caffe starts): Caffe's release
    build trains on, writes past its buffers and dies of it (glibc's heap check, SIGABRT)."""
    folder = tiny_render(tmp_path, ["half0A"]) / "half0A"
    for name in ("imagenet_train.prototxt", "imagenet_val.prototxt"):
        text = (folder / name).read_text()
        at = text.index("num_output: 10", text.index('name: "fc8"'))
        (folder / name).write_text(text[:at] + "num_output: 2" + text[at + len("num_output: 10"):])
    code, log = failed_at_start(folder)
    verdict = failures.classify(code, log)
    assert code == -signal.SIGABRT and not verdict.may_pass, log.read_text()[-2000:]
    assert "caffe corrupted its memory (corrupted size vs. prev_size)" in verdict.reason


def test_data_that_is_not_there_cannot_pass(tmp_path, tiny_render):
    folder = tiny_render(tmp_path, ["half0A"]) / "half0A"
    (folder / "imagenet_train_lmdb").unlink()
    (folder / "imagenet_train_lmdb").symlink_to(tmp_path / "nothing-here")
    code, log = failed_at_start(folder)
    verdict = failures.classify(code, log)
    assert not verdict.may_pass and "Check failed: mdb_status == 0 (2 vs. 0)" in verdict.reason


def test_xfer_train_retries_only_what_may_pass(tmp_path, tiny_render):
    """`xfer train --retries 1`: Caffe killed by SIGKILL -> exit 75 and a try counted; the next kill, tries spent ->
    the error. A crop too large -> the error at once, no try counted. The status file names each reason."""
    out = tiny_render(tmp_path / "results", ["half0A", "half0B"], max_iter=NEVER, snapshot=0, test_interval=NEVER,
                      display=10)
    cmd = ["train", "half0A", "--suite", "mini", "--results", str(out), "--cpu", "--retries", "1"]
    folder = out / "half0A"
    for run, expected in enumerate((failures.RETRY_EXIT, 2)):
        trainer = subprocess.Popen([*xfer_argv(), *cmd], stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while not (len(tail.log_files(folder)) > run
                       and "Iteration 10," in tail.log_files(folder)[-1].read_text()):
                assert trainer.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            kill_children(trainer.pid, signal.SIGKILL)  # Caffe, not the trainer: the OOM killer's choice
            err = trainer.communicate(timeout=60)[1]
        finally:
            kill_if_running(trainer)
        assert trainer.returncode == expected, err
        assert "caffe was killed by SIGKILL" in err
    assert "retries are spent" in err
    assert [t["reason"] for t in failures.tries(folder)] == ["caffe was killed by SIGKILL"]
    status = json.loads((folder / "xfer_status.json").read_text())
    assert status["state"] == "failed" and status["reason"] == "caffe was killed by SIGKILL"

    edit(out / "half0B" / "imagenet_train.prototxt", "transform_param {", "transform_param {\n    crop_size: 64")
    broken = xfer("train", "half0B", "--suite", "mini", "--results", str(out), "--cpu", "--retries", "1")
    assert broken.returncode == 2 and "Check failed: datum_height >= crop_size" in broken.stderr
    assert failures.tries(out / "half0B") == []


def xfer_argv():
    return [sys.executable, "-m", "xfer.cli"]


def kill_children(pid, signum):
    """Send `signum` to the children of `pid` (the trainer's Caffe)."""
    killed = []
    for entry in os.listdir("/proc"):
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:  # not a process, or gone
            continue
        if stat.rsplit(")", 1)[-1].split()[1] == str(pid):  # field 4, after the command in parentheses
            os.kill(int(entry), signum)
            killed.append(entry)
    assert killed, f"pid {pid} has no child"


@pytest.mark.parametrize("line, may_pass", [
    # Caffe's own CUDA messages (src/caffe/util/device_alternate.hpp, syncedmem.cpp, cudnn.hpp), as a GPU build
    # logs them: no GPU here to make them happen.
    ("F1207 02:10:11.123456  4242 syncedmem.cpp:71] Check failed: error == cudaSuccess (2 vs. 0)  out of memory",
     True),
    ("F1207 02:10:11.123456  4242 math_functions.cu:79] Check failed: error == cudaSuccess (700 vs. 0)  an illegal "
     "memory access was encountered", True),
    ("F1207 02:10:11.123456  4242 cudnn_conv_layer.cpp:53] Check failed: status == CUDNN_STATUS_SUCCESS (8 vs. 0)  "
     "CUDNN_STATUS_EXECUTION_FAILED", True),
    ("F1207 02:10:11.123456  4242 common.cpp:152] Check failed: error == cudaSuccess (100 vs. 0)  no CUDA-capable "
     "device is detected", True),
    ("F1207 02:10:11.123456  4242 cudnn_conv_layer.cpp:53] Check failed: status == CUDNN_STATUS_SUCCESS (3 vs. 0)  "
     "CUDNN_STATUS_BAD_PARAM", False),
    ("F1207 02:10:11.123456  4242 db_lmdb.hpp:15] Check failed: mdb_status == 0 (2 vs. 0) No such file or directory",
     False),
])
def test_fatal_lines_of_a_gpu_build(tmp_path, line, may_pass):
    log = tmp_path / "gpu.log"
    log.write_text("I1207 02:10:10.000000  4242 solver.cpp:218] Iteration 100 (5 iter/s), loss = 6.9\n"
                   + line + "\n*** Check failure stack trace: ***\n")
    assert failures.classify(-signal.SIGABRT, log) == failures.Verdict(may_pass, line.split("] ", 1)[1])


@pytest.mark.parametrize("code, outcome", [(0, "done"), (75, "retry"), (-9, "retry"), (-11, "retry"), (1, "ended"),
                                           (2, "ended"), (143, "ended")])
def test_what_a_runner_does_after_a_trainer(code, outcome):
    assert failures.trainer_exit(code) == outcome



def test_each_kind_of_try_has_its_own_count(tmp_path):
    """SLURM's stray stops (xfer/run/slurmjob.py) and the failures that may pass share one file but not a limit."""
    assert failures.take_retry(tmp_path, 1, "caffe was killed by SIGSEGV")
    assert failures.take_retry(tmp_path, 1, "a stray SIGTERM", kind="strays")
    assert not failures.take_retry(tmp_path, 1, "caffe was killed by SIGBUS")
    assert not failures.take_retry(tmp_path, 1, "another stray SIGTERM", kind="strays")
    assert [t["reason"] for t in failures.tries(tmp_path)] == ["caffe was killed by SIGSEGV"]
    assert [t["reason"] for t in failures.tries(tmp_path, "strays")] == ["a stray SIGTERM"]
    failures.reset(tmp_path)  # a new campaign
    assert failures.tries(tmp_path) == failures.tries(tmp_path, "strays") == []
