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


def folder_names() -> set:
    """Every file and link name nets/layout.py gives a net folder (its plain string constants)."""
    from xfer.nets import layout
    return {value for key, value in vars(layout).items() if key.isupper() and isinstance(value, str)
            and ("." in value or key.endswith("LINK"))}  # the file names and the links (not WEIGHTS and STATE)


def spelled_names(path, names) -> list:
    """(line, name) of each net-folder name written out in a string of the module (docstrings and comments aside)."""
    import ast
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [(node.lineno, name) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
            for name in names if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", node.value)]


def test_a_net_folders_names_are_spelled_only_in_its_layout_module():
    names = folder_names()
    assert {"xfer_status.json", "imagenet_solver.prototxt", "basenet", "init.manifest.json"} <= names
    found = {str(p.relative_to(ROOT)): spelled for p in sorted((ROOT / "xfer").rglob("*.py"))
             if p.name != "layout.py" and (spelled := spelled_names(p, names))}
    assert found == {}  # a module that spells one: import it from xfer/nets/layout.py instead


def test_the_layout_check_sees_a_spelled_name(tmp_path):
    module = tmp_path / "m.py"
    module.write_text('"""Writes xfer_status.json."""\nSTATUS = "xfer_status.json"  # the status\nX = "other.json"\n')
    assert spelled_names(module, {"xfer_status.json", "basenet"}) == [(2, "xfer_status.json")]


def imports_of(path, root=ROOT) -> set:
    """The xfer modules a file imports (absolute names), from its relative and absolute import lines."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found = set()
    pattern = r"^\s*from (\.*)([\w.]*) import (?:\(([^)]*)\)|([\w, ]+))"
    for dots, name, wrapped, names in re.findall(pattern, path.read_text(), re.M):
        names = re.sub(r"#.*", "", wrapped or names)  # a wrapped list may carry a comment on each line
        base = package.split(".")[:len(package.split(".")) - len(dots) + 1] if dots else []
        module = ".".join(base + ([name] if name else []))
        found |= {module} | {f"{module}.{n.strip()}" for n in names.split(",") if n.strip()}
    return {m for m in found if m.startswith("xfer")}


def test_only_the_cli_reaches_the_studies_and_no_study_imports_another():
    """The stages sit below the studies (a stage importing a study would turn the data flow around), and the
    studies share their steps through xfer/studies/pipeline.py, not through each other."""
    stages = [p for p in (ROOT / "xfer").rglob("*.py") if not {"cli", "studies"} & set(p.relative_to(ROOT).parts)]
    assert [str(p.relative_to(ROOT)) for p in stages if any(m.startswith("xfer.studies") for m in imports_of(p))] == []
    studies = {"xfer.studies.demo", "xfer.studies.recipes", "xfer.studies.rehearse"}
    crossing = {p.stem: imports_of(p) & (studies - {f"xfer.studies.{p.stem}"})
                for p in (ROOT / "xfer" / "studies").glob("*.py")}
    assert {study: found for study, found in crossing.items() if found} == {}
    assert "xfer.studies.pipeline" in imports_of(ROOT / "xfer" / "studies" / "recipes.py")


def test_the_import_reader_sees_relative_and_absolute_imports(tmp_path):
    (tmp_path / "xfer" / "nets").mkdir(parents=True)
    wrapped = tmp_path / "xfer" / "nets" / "wrapped.py"
    wrapped.write_text("from ..studies import (demo,  # a comment\n    recipes)\nfrom . import arch\n")
    assert imports_of(wrapped, tmp_path) >= {"xfer.studies.demo", "xfer.studies.recipes", "xfer.nets.arch"}
    assert "xfer.studies.demo" in imports_of(ROOT / "xfer" / "cli" / "demo.py")
    assert "xfer.studies.pipeline" in imports_of(ROOT / "xfer" / "studies" / "demo.py")
    assert "xfer.nets.registry" in imports_of(ROOT / "xfer" / "studies" / "pipeline.py")
    assert "xfer.caffeenv" in imports_of(ROOT / "xfer" / "studies" / "pipeline.py")
    assert "xfer.studies.demo" in imports_of(ROOT / "tests" / "test_demo.py")
