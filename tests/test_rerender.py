"""Re-rendering after an edit (issue 15) and each net's mean (issue 12 §1).

The render record (render.json) lets `xfer render` update files still as it wrote them, keep hand edits, refuse to
change a trained net's recipe, show the change as grouped diffs; the mean links follow the paper's rule."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from xfer import cli, progress
from xfer.errors import XferError
from xfer.nets import record, registry, render
from xfer.paths import DATA_DIR, RESULTS_DIR, TEMPLATES_DIR
from xfer.run import train

ROOT = Path(__file__).resolve().parent.parent
DROPOUT_LINE = "dropout_ratio: {{ arch.dropout_ratio | num }}"


def expected_mean(name, whole_level) -> str:
    """The paper's rule, spelled from the net's name alone (independently of the registry's MEAN_RULE)."""
    m = re.fullmatch(r"transfer(?:-ft)?(\d)([AB])\1[AB]_1_\d", name)
    if m:
        return f"half{m[1]}{m[2]}_train"  # the base's set, not the set it trains on
    m = re.fullmatch(r"transfer(?:-ft)?natman([AB])[AB]_1_\d", name)
    if m:
        return f"halfnatman{m[1]}_train"
    if re.fullmatch(r"half(\d|natman)[AB]", name):
        return f"{name}_train"
    m = re.fullmatch(r"reduced-(\d{4})", name)
    if m and int(m[1]) != whole_level:
        return f"reduced{m[1]}_train"
    assert name == "netbase" or name.startswith(("nolearn_1_", "reduced-")), name
    return "whole_train"


def mean_link(folder) -> str:
    return os.readlink(folder / "imagenet_mean.binaryproto")


def test_every_paper_net_links_the_mean_the_paper_used():
    nets = registry.nets("paper")
    assert len(nets) == 170
    means = set()
    for net in nets:
        want = expected_mean(net.name, 1300)
        assert mean_link(RESULTS_DIR / net.name) == f"../../ilsvrc12/data/{want}/mean.binaryproto", net.name
        assert record.read_record(RESULTS_DIR / net.name)["links"]["imagenet_mean.binaryproto"].endswith(
            f"/{want}/mean.binaryproto")
        means.add(want)
    assert mean_link(RESULTS_DIR / "transfer0B0A_1_3").split("/")[-2] == "half0B_train"
    assert len(means) == 22  # 10 halves + 11 reduced sets + the whole set


def test_every_mini_net_links_the_mean_the_rule_gives(tmp_path):
    nets = registry.nets("mini")
    render.render(nets, tmp_path, tmp_path / "data")
    for net in nets:
        assert mean_link(tmp_path / net.name) == f"../data/{expected_mean(net.name, 6000)}/mean.binaryproto"
        assert record.read_record(tmp_path / net.name)["suite"] == "mini"


def test_check_catches_a_wrong_mean_link(tmp_path, capsys):
    names = ["half1B", "transfer1B1A_1_4"]
    render.render([registry.get(n) for n in names], tmp_path, DATA_DIR)
    wrong = tmp_path / "transfer1B1A_1_4" / "imagenet_mean.binaryproto"
    wrong.unlink()
    os.symlink(os.path.relpath(DATA_DIR / "half1A_train" / "mean.binaryproto", wrong.parent), wrong)
    assert cli.main(["render", "--check", "--out", str(tmp_path), *names]) == 1
    out = capsys.readouterr().out
    assert f"{wrong}: points to" in out and "half1B_train/mean.binaryproto" in out and "1 problem(s)" in out


def said(call):
    """(lines said by progress.say, the XferError raised or None) of a call."""
    lines, error = [], None
    with progress.reporting(lambda text, err: lines.append(text)):
        try:
            call()
        except XferError as exc:
            error = exc
    return "\n".join(lines), error


def edited_templates(tmp_path) -> Path:
    """A copy of the templates with the one-line change of issue 15 (dropout 0.5 -> 0.4 in both nets)."""
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES_DIR, copy)
    layers = copy / "_layers.prototxt.j2"
    assert layers.read_text().count(DROPOUT_LINE) == 1
    layers.write_text(layers.read_text().replace(DROPOUT_LINE, "dropout_ratio: 0.4"))
    return copy


def test_template_edit_updates_untouched_nets_and_keeps_a_hand_edit(tmp_path):
    nets, out = registry.nets("paper"), tmp_path / "results"
    render.render(nets, out, DATA_DIR)
    hand = out / "transfer2A2B_1_5" / "imagenet_solver.prototxt"
    hand.write_text(hand.read_text().replace("display: 20", "display: 40"))
    untouched_val = (out / "transfer2A2B_1_5" / "imagenet_val.prototxt").read_text()
    text, error = said(lambda: render.render(nets, out, DATA_DIR, templates_dir=edited_templates(tmp_path)))
    assert "169 net(s) updated from the templates: imagenet_train.prototxt, imagenet_val.prototxt" in text
    assert error is not None and "kept 1 net(s)" in str(error)
    assert "transfer2A2B_1_5: imagenet_solver.prototxt edited by hand since its last render" in str(error)
    assert "--force" in str(error.fix) and "template or an override" in str(error.fix)
    assert "display: 40" in hand.read_text()  # the hand edit is kept, and its whole net left as it was
    assert (out / "transfer2A2B_1_5" / "imagenet_val.prototxt").read_text() == untouched_val
    for net in nets:
        train_text = (out / net.name / "imagenet_train.prototxt").read_text()
        assert train_text.count("dropout_ratio: 0.4") == (0 if net.name == "transfer2A2B_1_5" else 2), net.name
    again, error = said(lambda: render.render(nets, out, DATA_DIR, templates_dir=edited_templates(tmp_path / "2")))
    assert "updated" not in again and "transfer2A2B_1_5" in str(error)  # the rest is done; the edit still held
    text, error = said(lambda: render.render(nets, out, DATA_DIR, force=True,
                                             templates_dir=edited_templates(tmp_path / "3")))
    assert error is None and "--force overwrote hand edits in 1 net(s): transfer2A2B_1_5" in text
    assert "display: 20" in hand.read_text()


def test_diff_groups_one_template_change_across_all_nets(tmp_path, capsys):
    out = tmp_path / "results"
    render.render(registry.nets("paper"), out, DATA_DIR)
    templates = edited_templates(tmp_path)
    assert cli.main(["render", "--diff", "--out", str(out), "--templates", str(templates)]) == 0
    text = capsys.readouterr().out
    assert text.count("# all 170 selected nets") == 2  # one group per file, not 170
    assert text.count("-    dropout_ratio: 0.5\n+    dropout_ratio: 0.4\n") == 4  # fc6 and fc7, train and val
    assert "--- imagenet_train.prototxt (on disk)" in text and "--- imagenet_val.prototxt (on disk)" in text
    assert text.rstrip().endswith("# 2 change(s) in 170 of 170 net(s)")
    assert (out / "half0A" / "imagenet_train.prototxt").read_text().count("dropout_ratio: 0.5") == 2  # wrote nothing
    assert cli.main(["render", "--diff", "--out", str(out), "transfer0A0B_1_*"]) == 0
    assert "7 nets: a render would change nothing" in capsys.readouterr().out


def test_diff_names_part_of_the_nets_compactly(tmp_path, capsys):
    out = tmp_path / "results"
    nets = registry.match(["half0?", "transfer0A0B_1_*"])
    render.render(nets, out, DATA_DIR)
    for n in (2, 3, 4):
        solver = out / f"transfer0A0B_1_{n}" / "imagenet_solver.prototxt"
        solver.write_text(solver.read_text().replace("base_lr: 0.01", "base_lr: 0.001"))
    assert cli.main(["render", "--diff", "--out", str(out), "half0?", "transfer0A0B_1_*"]) == 0
    text = capsys.readouterr().out
    assert "# 3 net(s): transfer0A0B_1_{2..4} (context lines from transfer0A0B_1_2)" in text
    assert "-base_lr: 0.001\n+base_lr: 0.01\n" in text and "# 1 change(s) in 3 of 9 net(s)" in text
    assert "without --force (edited by hand since the last render, or trained): transfer0A0B_1_{2..4}\n" in text


def run_kit(copy, *args):
    return subprocess.run([sys.executable, "-m", "xfer.cli", *args], cwd=copy, capture_output=True, text=True)


def test_docs_flow_edit_diff_render_git_diff(tmp_path):
    """docs/networks.md's flow, as typed, in a copy of the kit under git: edit, --diff, render, git diff."""
    copy = tmp_path / "kit"
    for part in ("xfer", "prototxt_templates", "results"):
        shutil.copytree(ROOT / part, copy / part, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(copy), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "kit"], check=True)
    layers = copy / "prototxt_templates" / "_layers.prototxt.j2"
    layers.write_text(layers.read_text().replace(DROPOUT_LINE, "dropout_ratio: 0.4"))
    proc = run_kit(copy, "render", "--diff")
    assert proc.returncode == 0 and proc.stdout.count("# all 170 selected nets") == 2, proc.stdout + proc.stderr
    proc = run_kit(copy, "render")
    assert proc.returncode == 0, proc.stderr
    assert "170 net(s) updated from the templates: imagenet_train.prototxt, imagenet_val.prototxt" in proc.stdout
    stat = subprocess.run(git + ["diff", "--stat"], capture_output=True, text=True, check=True).stdout
    assert "511 files changed" in stat  # 170 x (train, val, render.json) + the template
    assert run_kit(copy, "render", "--check").returncode == 0


def test_trained_net_recipe_change_needs_force_and_surgery_reads_the_suite(tmp_path, tiny_render, capsys):
    out = tiny_render(tmp_path / "results", ["half0A", "transfer0A0B_1_2"])
    assert train.train(registry.get("half0A", "mini"), out, cpu=True, quiet=True) == 0  # real caffe train
    assert render.is_trained(out / "half0A") and (out / "half0A" / "caffe_imagenet_train_iter_24.caffemodel").is_file()
    # `xfer db` wrote the mean the rule asks for: the transfer net trains on half0B with half0A's mean
    assert mean_link(out / "transfer0A0B_1_2").endswith("/half0A_train/mean.binaryproto")
    assert (out / "transfer0A0B_1_2" / "imagenet_mean.binaryproto").resolve().is_file()
    solver = out / "half0A" / "imagenet_solver.prototxt"
    before = solver.read_text()
    text, error = said(lambda: tiny_render(out, ["half0A", "transfer0A0B_1_2"], max_iter=48))
    assert error is not None and "half0A: trained (snapshots there) and its recipe would change: " \
                                 "imagenet_solver.prototxt" in str(error)
    assert solver.read_text() == before and "1 net(s) updated from the templates" in text  # the transfer net
    text, error = said(lambda: tiny_render(out, ["half0A"], force=True, max_iter=48))
    assert error is None and "max_iter: 48" in solver.read_text()
    assert "--force changed the recipe of 1 trained net(s), under their snapshots: half0A" in text
    assert json.loads((out / "half0A" / "render.json").read_text())["overrides"]["max_iter"] == 48
    # a mini folder: surgery finds its suite in the record (no --suite), the base's final snapshot by its recipe
    tiny_render(out, ["half0A"], force=True)
    assert cli.main(["surgery", "--net", str(out / "transfer0A0B_1_2")]) == 0
    assert (out / "transfer0A0B_1_2" / "init.caffemodel").is_file()
    capsys.readouterr()
    assert cli.main(["status", "--results", str(out), "--json"]) == 0  # the mini suite's 268 nets, not paper's 170
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(registry.nets("mini")) and {"half0A", "transfer0A0B_1_2", "transfer3B3B_1_7"} <= {
        row["net"] for row in rows}
    assert cli.main(["surgery", "--net", str(out / "transfer0A0B_1_2"), "--suite", "paper", "--force"]) == 2
    assert "rendered for the mini suite, not paper" in capsys.readouterr().err


def test_a_folder_where_a_link_belongs_leaves_its_net_unwritten_even_with_force(tmp_path):
    net, out = registry.get("half3B"), tmp_path / "results"
    render.render([net], out, DATA_DIR)
    (out / net.name / "imagenet_val_lmdb").unlink()
    (out / net.name / "imagenet_val_lmdb").mkdir()
    before = (out / net.name / "imagenet_train.prototxt").read_text()
    _, error = said(lambda: render.render([net], out, DATA_DIR, force=True, templates_dir=edited_templates(tmp_path)))
    assert error is not None and "half3B: imagenet_val_lmdb exists and is not a link" in str(error)
    assert (out / net.name / "imagenet_train.prototxt").read_text() == before  # nothing of the net half-written
