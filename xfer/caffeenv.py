"""Finding the Caffe build the kit uses: its binaries, pycaffe and the record of how it was built.

`make setup` builds Caffe into the cache (tools/build_caffe.sh) and links it into .venv: binaries in .venv/bin,
pycaffe through a .pth file, and the build's record in .venv/caffe-build.json. Everything here reads that record,
so the kit always runs the Caffe it was built with, not whatever happens to be on PATH.
"""
import json
import os
import shutil
import sys
from pathlib import Path

from .errors import XferError
from .paths import VENV_DIR

# caffe.bin: the same binary under the name the original README copies into a results folder (tools/setup.sh)
TOOLS = ("caffe", "caffe.bin", "convert_imageset", "compute_image_mean", "upgrade_net_proto_text")
BUILD_RECORD = VENV_DIR / "caffe-build.json"
SETUP_FIX = "run `make setup` in the repository root"


def build_info() -> dict:
    """The build record of the linked Caffe (source, key, flags, prefix), or {} when none is linked."""
    record = Path(os.environ.get("XFER_CAFFE_RECORD", BUILD_RECORD))
    if not record.exists():
        return {}
    return json.loads(record.read_text())


def prefix() -> Path:
    info = build_info()
    if os.environ.get("XFER_CAFFE_PREFIX"):
        return Path(os.environ["XFER_CAFFE_PREFIX"])
    if not info:
        raise XferError("no Caffe build is linked into the kit", path=BUILD_RECORD, fix=SETUP_FIX)
    return Path(info["prefix"])


def tool(name: str) -> str:
    """Absolute path of a Caffe binary (caffe, convert_imageset, ...)."""
    candidates = []
    try:
        candidates.append(prefix() / "bin" / name)
    except XferError:
        pass
    candidates.append(Path(sys.prefix) / "bin" / name)
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which(name)
    if found:
        return found
    raise XferError(f"Caffe tool `{name}` not found", fix=SETUP_FIX)


def pycaffe_of_prefix():
    """XFER_CAFFE_PREFIX's own pycaffe folder, from that build's record (tools/build_caffe.sh writes its
    `pythonpath`, which setup links into the venv), or None: the variable points the tools at another build (a dev
    build, the CUDA build), and pycaffe must come from the same build, not from the venv's .pth."""
    if not os.environ.get("XFER_CAFFE_PREFIX"):
        return None
    record = prefix() / "build-info.json"
    if not record.is_file():
        return None
    folder = Path(json.loads(record.read_text())["pythonpath"])
    return folder if (folder / "caffe" / "__init__.py").is_file() else None


def import_caffe(quiet: bool = True):
    """Import pycaffe (quietly: glog's INFO lines would drown the kit's own output), XFER_CAFFE_PREFIX's when set."""
    if quiet:
        os.environ.setdefault("GLOG_minloglevel", "2")
    folder = pycaffe_of_prefix()
    if folder is not None and str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    try:
        import caffe  # noqa: F401  (pycaffe, linked into the venv by make setup)
    except ImportError as exc:
        raise XferError(f"pycaffe does not import: {exc}", fix=SETUP_FIX) from exc
    return caffe


def caffe_pb2():
    """Caffe's protobuf messages (NetParameter, SolverParameter, Datum, BlobProto, ...)."""
    return import_caffe().proto.caffe_pb2


def read_net(path, old_syntax=False):
    """A rendered prototxt as Caffe's NetParameter. One error naming the file when it is missing or does not
    parse, and (unless old_syntax) for the 2014 V0/V1 `layers` syntax, which the kit's readers do not handle."""
    from google.protobuf import text_format  # with pycaffe: only the verbs that read nets pay for it
    path = Path(path)
    if not path.is_file():
        raise XferError("the net is not rendered", path=path, fix=f"run `xfer render {path.parent.name}` first")
    param = caffe_pb2().NetParameter()
    try:
        text_format.Merge(path.read_text(), param)
    except text_format.ParseError as exc:
        raise XferError(f"cannot parse the net ({exc})", path=path,
                        fix="re-render it with `xfer render --force` (or mend the edit)") from exc
    if param.layers and not old_syntax:
        raise XferError("old-syntax (V0/V1) net definition", path=path,
                        fix="upgrade it with Caffe's upgrade_net_proto_text, or re-render it with `xfer render`")
    return param


# OpenBLAS picks its kernels by the CPU when it loads (Zen and Haswell: AVX2 + FMA; SkylakeX: AVX-512; ...), and
# kernels round differently. A miniature trained on two machines differed by up to 6.5 points (AnB at n = 6) while
# each machine repeated its own numbers exactly. Haswell's kernels run on every x86-64 CPU with AVX2 and FMA (Intel
# since 2013, AMD since 2015; Zen's own choice is the same code), and one BLAS thread per Caffe keeps every sum in
# one order whatever the core count.
PINNED_BLAS = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_NUM_THREADS": "1"}
PINNED_FLAGS = ("avx2", "fma")


def cpu_flags(cpuinfo="/proc/cpuinfo") -> set:
    """The first CPU's feature flags (empty when unknown: not Linux, or not x86)."""
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith("flags"):
                return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def pinned_blas_env(environ=None, flags=None) -> tuple:
    """(entries to add to a Caffe's environment, one line saying what they do) for the same CPU arithmetic on any
    x86-64 with AVX2 and FMA. A value the user set wins; a CPU without those flags gets nothing (forcing Haswell's
    kernels there would kill Caffe with SIGILL), and the line says the numbers may differ."""
    environ = os.environ if environ is None else environ
    flags = cpu_flags() if flags is None else flags
    if not set(PINNED_FLAGS) <= flags:
        return {}, ("BLAS: this CPU lacks AVX2/FMA, OpenBLAS chooses its own kernels: "
                    "numbers may differ from the README's (docs/demo.md#numbers-across-machines)")
    chosen = {k: v for k, v in PINNED_BLAS.items() if k not in environ}
    kept = {k: environ[k] for k in PINNED_BLAS if k in environ and environ[k] != PINNED_BLAS[k]}
    line = "BLAS: OpenBLAS Haswell kernels, 1 thread per net (the same numbers on any x86-64 with AVX2)"
    if kept:
        mine = " ".join(f"{k}={v}" for k, v in kept.items())
        line = f"BLAS: your {mine} kept: numbers may differ from the README's"
    return chosen, line
