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


def import_caffe(quiet: bool = True):
    """Import pycaffe (quietly: glog's INFO lines would drown the kit's own output)."""
    if quiet:
        os.environ.setdefault("GLOG_minloglevel", "2")
    try:
        import caffe  # noqa: F401  (pycaffe, linked into the venv by make setup)
    except ImportError as exc:
        raise XferError(f"pycaffe does not import: {exc}", fix=SETUP_FIX) from exc
    return caffe


def caffe_pb2():
    """Caffe's protobuf messages (NetParameter, SolverParameter, Datum, BlobProto, ...)."""
    return import_caffe().proto.caffe_pb2
