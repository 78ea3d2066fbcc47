""""One place" for a family and a figure: a toy family and a toy figure registered inside the test, and nothing
else edited, flow through `xfer nets`, render, summary (its tables and the comparison), plot and status."""
import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from helpers import accuracy_run
from xfer.cli import main
from xfer.errors import XferError
from xfer.nets import builders, families, registry
from xfer.report import compare, figures, summary

TOY = ("toy0A0B_1_1", "toy0A0B_1_2", "toy0A0B_1_3")


def toy_net(suite, split, x, y, n):
    """Layers 1..n copied from half{s}X and fine-tuned, the rest fresh: a transfer-ft under another name."""
    return builders.make_net(f"toy{split}{x}{split}{y}_1_{n}", suite, "toy", f"half{split}{y}_train",
                             f"half{split}{y}_valid", base=f"half{split}{x}",
                             policy=builders.transfer_policy(n, builders.TUNED), n=n, split=split)


def draw_toy(fam, missing=""):
    fig = Figure()
    xs = sorted(fam["toy"])
    fig.add_subplot(111).plot(xs, [fam["toy"][x]["mean"] for x in xs], **families.style("toy"))
    return fig


@pytest.fixture
def toy():
    """The toy family, its series and its figure, registered for one test and taken back out after it."""
    families.register(families.Series("toy", "toy family", dict(color="#123456", marker="s"), ("baseB", 0)))
    families.register(families.Family(
        "toy", lambda net: ("toy", net.n), r"toy([0-3])([AB])\1([AB])_1_([1-7])",
        lambda m, s: toy_net(s, m[1], m[2], m[3], int(m[4])),
        lambda suite: [toy_net(suite, "0", "A", "B", n) for n in (1, 2, 3)], "toy0A0B_1_2"))
    figures.FIGURES["toy figure"] = figures.FigureSpec(
        "toy figure", ("toy",), ("toy",), ("toy",), (figures.Plot("result_toy", draw_toy),))
    yield
    del figures.FIGURES["toy figure"]
    families.unregister("toy")
    families.unregister("toy")  # the series of the same name
    assert "toy" not in families.family_names() and not any(n.name in TOY for n in registry.nets("mini"))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_a_registered_family_and_figure_flow_through_every_verb(toy, tmp_path, tiny_render, capsys):
    listed = json.loads(run(capsys, "nets", "--suite", "mini", "--json"))
    rows = {row["name"]: row for row in listed}
    assert set(TOY) <= set(rows) and rows["toy0A0B_1_2"]["family"] == "toy"
    assert registry.get("toy0A0B_1_2", "mini").base == "half0A" and registry.describe("toy1B1A_1_7").n == 7

    out = tiny_render(tmp_path / "results", ["half0A", "half0B", *TOY])
    assert 'name: "conv3-new"' in (out / "toy0A0B_1_2" / "imagenet_train.prototxt").read_text()
    for i, name in enumerate(["half0B", *TOY]):  # logs as Caffe writes them; the toy nets a little below the base
        accuracy_run(name, np.linspace(0.3, 0.6 - 0.02 * i, 12), np.linspace(3, 1, 12), np.linspace(3, 0.5, 12),
                     out)

    table = run(capsys, "summary", "--results", out, "--families")
    assert "toy" in table and "toy0A0B_1_3" in table
    numbers, _ = summary.load(out)
    assert sorted(summary.families(numbers)["toy"]) == [1, 2, 3]
    text = compare.to_text(compare.compare_trees(numbers, numbers, 6000, 6000))
    assert "toy family" in text  # its row, against base B as its entry says

    run(capsys, "plot", "--results", out, "--out", tmp_path / "plots")
    assert (tmp_path / "plots" / "result_toy.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "result_transfer.png").is_file()

    shown = json.loads(run(capsys, "status", "--suite", "mini", "--results", out, "--json", *TOY))
    assert [row["net"] for row in shown] == list(TOY)
    assert all(row["accuracy"] is not None for row in shown)


def test_a_series_nobody_registered_is_an_error_not_a_dropped_row(toy):
    families.register(families.Family("toy", lambda net: ("nowhere", 0), r"toy([0-3])([AB])\1([AB])_1_([1-7])",
                                      lambda m, s: toy_net(s, m[1], m[2], m[3], int(m[4]))))
    with pytest.raises(XferError, match="figure series 'nowhere' is not registered"):
        summary.families({"toy0A0B_1_2": {"top1": 0.5}})


def test_every_registered_figure_holds_a_drawing_function():
    for spec in figures.FIGURES.values():
        for plot in spec.plots:
            assert callable(plot.function), f"{spec.name}: {plot.file}"


def test_every_family_of_every_suite_places_its_nets_on_a_registered_series():
    for suite in registry.suite_names():
        for net in registry.nets(suite):
            label, x = families.place(net)
            assert families.series(label).label in (label, label.rstrip("0123456789")) and x is not None


def test_the_scheduler_flag_and_its_old_spelling_plan_the_same_jobs(tmp_path, tiny_render, capsys):
    """`xfer run --scheduler` (the scheduler) no longer shares Caffe's database word `--backend`, which still works;
    both backends' trainers come from the one command line of backends/base.py."""
    from xfer.run.backends import base, slurm
    out = tiny_render(tmp_path / "results", ["half0A", "transfer0A0B_1_2"])
    plans = [run(capsys, "run", flag, "slurm", "--suite", "mini", "--results", out, "--dry-run", "--cpu")
             for flag in ("--scheduler", "--backend")]
    assert plans[0] == plans[1] and "sbatch" in plans[0]
    net = registry.get("transfer0A0B_1_2", "mini")
    line = " ".join(base.train_command(net, out.resolve(), 2, extra=["--lock-wait", str(slurm.LOCK_WAIT)]))
    assert line in plans[0].replace("'", "")


def make_toy_backend():
    """A backend made inside the test from the interface alone: it trains the nets one after another with the one
    trainer command line, in plan order (bases first), records "toy-<n> <queue>" as each net's job in its folder and
    answers for it in `xfer status`."""
    import subprocess

    from xfer.run.backends import base

    class Toy(base.Backend):
        name, column = "toy", "toy job"
        flags = (base.flag("--toy-queue", default="q0", help="toy: the queue the jobs go to"),)

        def submit(self, todo, done, results):
            base.say_plan(todo, done, results)
            for i, net in enumerate(todo):
                (results / net.name / "toy_job.json").write_text(json.dumps(f"toy-{i} {self.own['toy_queue']}"))
            return [] if self.options.dry_run else [base.train_command(net, results, self.options.retries)
                                                    for net in todo]

        def wait(self, jobs, todo, results) -> int:
            return max([subprocess.run(cmd).returncode for cmd in jobs], default=0)

        def job_state(self, folder, queue):
            record = folder / "toy_job.json"
            return (json.loads(record.read_text()), None) if record.is_file() else None
    return Toy


@pytest.fixture
def toy_backend():
    from xfer.run import backends
    backend = backends.register(make_toy_backend())
    yield backend
    backends.unregister(backend.name)
    assert backend.name not in backends.names()


def test_a_registered_backend_brings_its_flag_its_jobs_and_its_status_column(toy_backend, tmp_path, tiny_render,
                                                                             capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    helptext = capsys.readouterr().out
    assert "toy scheduler:" in helptext and "--toy-queue" in helptext and "{local,slurm,toy}" in helptext
    out = tiny_render(tmp_path / "results", ["half0A", "transfer0A0B_1_2"])
    run(capsys, "run", "--suite", "mini", "--results", out, "--scheduler", "toy", "--toy-queue", "q7", "--cpu",
        "half0A", "transfer0A0B_1_2")
    for name in ("half0A", "transfer0A0B_1_2"):  # trained, in order, by the toy's jobs
        assert json.loads((out / name / "xfer_status.json").read_text())["state"] == "finished"
    table = run(capsys, "status", "--suite", "mini", "--results", out, "half0A", "transfer0A0B_1_2")
    header, *rows = table.splitlines()
    assert header.split()[-5:] == ["slurm", "job", "/", "toy", "job"]  # every backend's heading, in order
    assert "toy-0 q7" in rows[0] and "toy-1 q7" in rows[1]
    with pytest.raises(SystemExit):  # the flag is the toy's: gone once it is unregistered
        from xfer.run import backends
        backends.unregister("toy")
        main(["run", "--toy-queue", "q1", "--dry-run"])
