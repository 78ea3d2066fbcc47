"""What Caffe the kit runs, how it was built, and what is missing (with the fix): the rows of `xfer doctor`."""
import importlib
import sys

from . import caffeenv
from .errors import XferError


def collect() -> tuple[list[tuple[str, str]], list[str]]:
    """Rows to print and problems found (each problem carries its fix)."""
    rows, problems = [], []
    info = caffeenv.build_info()
    if not info:
        problems.append(f"no Caffe build linked ({caffeenv.BUILD_RECORD} missing); fix: {caffeenv.SETUP_FIX}")
    else:
        rows += [("caffe source", info.get("source", "?")), ("build key", info.get("key", "?")),
                 ("build prefix", info.get("prefix", "?")), ("cuda", "yes" if info.get("cuda") else "no (CPU_ONLY)"),
                 ("cmake flags", " ".join(f for f in info.get("cmake_flags", []) if not f.startswith("-DPYTHON_"))),
                 ("patches", ", ".join(info.get("patches", [])))]
    for name in caffeenv.TOOLS:
        try:
            rows.append((name, caffeenv.tool(name)))
        except XferError as exc:
            problems.append(str(exc).replace("\n  fix:", "; fix:"))
    try:
        caffe = caffeenv.import_caffe()
        rows.append(("pycaffe", caffe.__file__))
    except XferError as exc:
        problems.append(str(exc).replace("\n  fix:", "; fix:"))
    rows.append(("python", sys.version.split()[0] + " at " + sys.executable))
    for module in ("numpy", "google.protobuf", "lmdb", "plyvel"):
        try:
            rows.append((module, importlib.import_module(module).__version__))
        except ImportError:
            problems.append(f"python module {module} missing; fix: {caffeenv.SETUP_FIX}")
    return rows, problems
