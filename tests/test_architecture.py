"""The layout docs/architecture.md describes holds: every module is on its map, no import cycles or oversized
files and functions (the shared structure check), the lint `make test` runs passes, library code does not print."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRUCTURE = ROOT.parent / "shared" / "tools" / "structure.py"


def test_every_module_is_on_the_architecture_map():
    text = (ROOT / "docs" / "architecture.md").read_text()
    modules = [p for p in (ROOT / "xfer").rglob("*.py") if p.stem not in ("__init__", "__main__")]
    missing = [str(p.relative_to(ROOT)) for p in modules if not re.search(rf"\b{p.stem}\b", text)]
    assert missing == []
    packages = sorted(p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "xfer").rglob("__init__.py"))
    assert [p for p in packages if p != "xfer" and f"{p}/" not in text] == []


def test_structure_check_finds_no_cycle_no_long_file_or_function():
    if not STRUCTURE.is_file():
        pytest.skip(f"the shared structure check is not at {STRUCTURE}")
    proc = subprocess.run([sys.executable, str(STRUCTURE), "xfer"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
    assert "0 import cycles, 0 functions over 60 lines, 0 files over 400 lines" in proc.stdout


def test_lint_passes():
    ruff = Path(sys.executable).with_name("ruff")
    proc = subprocess.run([str(ruff), "check", "xfer", "tests", "bench"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_only_the_cli_and_the_reporter_print():
    printing = [str(p.relative_to(ROOT)) for p in (ROOT / "xfer").rglob("*.py")
                if "cli" not in p.parts and p.name != "progress.py" and re.search(r"\bprint\(", p.read_text())]
    assert printing == []
