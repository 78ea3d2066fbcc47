"""The layout docs/architecture.md describes holds: every module is on its map, no import cycles or oversized
files and functions (the shared structure check), the lint `make test` runs passes, library code does not print."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STRUCTURE = ROOT.parent / "shared" / "tools" / "structure.py"


def listed_modules(text) -> dict:
    """{folder: [modules]} from the doc's list of every module by its folder (lines "- `xfer/x/`: a, b, c")."""
    return {m[1]: sorted(m[2].replace(" ", "").split(",")) for m in re.finditer(r"^- `(xfer/(?:[a-z_]+/)*)`: (.+)$",
                                                                               text, re.M)}


def test_every_module_is_on_the_architecture_map_in_its_real_folder():
    text = (ROOT / "docs" / "architecture.md").read_text()
    folders = sorted({p.parent for p in (ROOT / "xfer").rglob("__init__.py")})
    real = {f"{d.relative_to(ROOT).as_posix()}/": sorted(p.stem for p in d.glob("*.py") if not p.stem.startswith("__"))
            for d in folders}
    assert listed_modules(text) == real  # a module in another folder, or missing, or gone, shows here
    packages = sorted(p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "xfer").rglob("__init__.py"))
    assert [p for p in packages if p != "xfer" and f"{p}/" not in text] == []


def test_the_map_check_sees_a_misplaced_module():
    listed = listed_modules("- `xfer/run/`: runner, summary\n- `xfer/report/`: draw\n")
    assert listed == {"xfer/run/": ["runner", "summary"], "xfer/report/": ["draw"]}
    assert listed != {"xfer/run/": ["runner"], "xfer/report/": ["draw", "summary"]}


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
