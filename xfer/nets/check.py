"""Proof that the kit's Caffe 1.0 files are the paper's nets: compare them with Caffe's own upgrade of 2014 files.

The 2014 files are either the kit's 2014-syntax (V0) rendering of the registry (prototxt_templates/v0/, always
available) or the original repository's own files (a checkout of it, when the user has one). Caffe's
`upgrade_net_proto_text` turns a V0 file into today's syntax (folding netbase's padding layers into the convolution);
the result must equal the kit's file layer by layer. Allowed differences, and only these: the data layer's source
and backend, and the val net's extra loss layer (test output #1).
"""
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from .. import caffeenv
from ..errors import XferError
from .layout import RENDERED, SOLVER, VAL_NET
from .render import render_texts

KIT_ONLY_VAL_LAYER = "loss"  # the val net's added loss output


def upgrade_net_text(v0_text: str, cache=None) -> str:
    """Caffe's upgrade_net_proto_text on a V0 text; results cached by content (many nets share one text)."""
    key = ("upgrade", digest(v0_text))
    if cache is not None and key in cache:
        return cache[key]
    with tempfile.TemporaryDirectory(prefix="xfer-upgrade.") as tmp:
        src, dst = Path(tmp) / "v0.prototxt", Path(tmp) / "upgraded.prototxt"
        src.write_text(v0_text)
        env = dict(os.environ, GLOG_minloglevel="2", GLOG_logtostderr="1")
        proc = subprocess.run([caffeenv.tool("upgrade_net_proto_text"), str(src), str(dst)],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0 or not dst.exists():
            raise XferError(f"upgrade_net_proto_text failed: {proc.stderr.strip()[-500:]}", path=src)
        text = dst.read_text()
    if cache is not None:
        cache[key] = text
    return text


def parse(text, message, path="<text>"):
    from google.protobuf import text_format
    msg = message()
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as exc:
        raise XferError(f"does not parse as {message.__name__}: {exc}", path=path) from None
    return msg


def strip_allowed(net_param, is_val: bool, kit: bool) -> None:
    """Clear what may differ: data source/backend (both sides) and the kit's extra val loss layer."""
    for layer in net_param.layer:
        if layer.type == "Data":
            layer.data_param.ClearField("source")
            layer.data_param.ClearField("backend")
    if kit and is_val and net_param.layer and net_param.layer[-1].name == KIT_ONLY_VAL_LAYER:
        del net_param.layer[-1]


def compare_nets(kit_text: str, upgraded_text: str, is_val: bool, where="<net>") -> list:
    """Differences between the kit's file and an upgraded 2014 file, one line per differing layer."""
    pb2 = caffeenv.caffe_pb2()
    kit, old = parse(kit_text, pb2.NetParameter, where), parse(upgraded_text, pb2.NetParameter, where)
    strip_allowed(kit, is_val, kit=True)
    strip_allowed(old, is_val, kit=False)
    problems = []
    if kit.name != old.name:
        problems.append(f"net name {kit.name!r} != {old.name!r}")
    kit_names, old_names = [la.name for la in kit.layer], [la.name for la in old.layer]
    if kit_names != old_names:
        problems.append(f"layers {kit_names} != paper's {old_names}")
        return problems
    for mine, theirs in zip(kit.layer, old.layer):
        if mine != theirs:
            problems.append(f"layer {mine.name} differs:\n  kit:   {one_line(mine)}\n"
                            f"  paper: {one_line(theirs)}")
    return problems


def one_line(message) -> str:
    from google.protobuf import text_format
    return text_format.MessageToString(message, as_one_line=True)


def compare_solvers(kit_text: str, old_text: str, where="<solver>") -> list:
    pb2 = caffeenv.caffe_pb2()
    kit, old = parse(kit_text, pb2.SolverParameter, where), parse(old_text, pb2.SolverParameter, where)
    if kit != old:
        return [f"solver differs:\n  kit:   {one_line(kit)}\n  paper: {one_line(old)}"]
    return []


def compare_with_v0(kit_texts: dict, v0_texts: dict, where: str, cache=None) -> list:
    """kit_texts / v0_texts: {file name: text} for one net (v0 missing a file: that file is not compared)."""
    problems = []
    for name in RENDERED:
        if name not in v0_texts or name not in kit_texts:
            continue
        # Many nets share identical texts (sources are link names), so comparisons are cached by content.
        key = ("compare", name, digest(kit_texts[name]), digest(v0_texts[name]))
        if cache is None or key not in cache:
            result = compare_file_texts(name, kit_texts[name], v0_texts[name], cache)
            if cache is None:
                problems += [f"{where}/{name}: {line}" for line in result]
                continue
            cache[key] = result
        problems += [f"{where}/{name}: {line}" for line in cache[key]]
    return problems


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def compare_file_texts(name, kit_text, v0_text, cache=None) -> list:
    if name == SOLVER:
        return compare_solvers(kit_text, v0_text)
    upgraded = upgrade_net_text(v0_text, cache)
    return compare_nets(kit_text, upgraded, name == VAL_NET)


def read_texts(net_dir) -> dict:
    return {name: (Path(net_dir) / name).read_text() for name in RENDERED if (Path(net_dir) / name).exists()}


def verify_net(net, net_dir=None, backend="lmdb", cache=None) -> list:
    """The kit's files for `net` (on disk in net_dir, or freshly rendered) against its upgraded V0 rendering."""
    kit = read_texts(net_dir) if net_dir else render_texts(net, backend)
    return compare_with_v0(kit, render_texts(net, "leveldb", flavor="v0/"), str(net_dir or net.name), cache)


def verify_against_original(net, original_net_dir, net_dir=None, backend="lmdb", cache=None) -> list:
    """The kit's files against the original repository's files of the same net (2014 syntax, upgraded by Caffe)."""
    kit = read_texts(net_dir) if net_dir else render_texts(net, backend)
    original = read_texts(original_net_dir)
    if not original:
        return [f"{original_net_dir}: no prototxt of the original repository there"]
    return compare_with_v0(kit, original, str(net_dir or net.name), cache)


def verify_rendered(nets, out_dir, backend="lmdb") -> tuple:
    """Check every rendered net folder: (problems, how many distinct files Caffe's upgrader ran on)."""
    cache, problems = {}, []
    for net in nets:
        problems += verify_net(net, Path(out_dir) / net.name, backend, cache)
    return problems, sum(1 for key in cache if key[0] == "upgrade")
