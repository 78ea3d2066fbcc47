"""Notebooks are committed without outputs: this fails (in `make test`, so in CI) when any .ipynb in git's index
holds outputs or execution counts, naming the file, the cells and the command that clears them. It reads what is
committed or staged (a notebook a person just ran in the working tree is not yet a fault; adding it is)."""
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
JUPYTER = Path(sys.executable).parent / "jupyter"


def tracked_notebooks() -> list:
    """Paths (relative, as git writes them) of the .ipynb files in git's index."""
    listed = subprocess.run(["git", "ls-files", "-z", "--", "*.ipynb"], cwd=ROOT, capture_output=True, check=True)
    return [name for name in listed.stdout.decode().split("\0") if name]


def staged(path):
    """The notebook as git's index holds it (what a commit takes)."""
    text = subprocess.run(["git", "show", f":{path}"], cwd=ROOT, capture_output=True, check=True).stdout.decode()
    return nbformat.reads(text, as_version=4)


def executed_cells(nb) -> list:
    """'cell N' for each code cell with outputs or an execution count (N counts all cells from 1)."""
    return [f"cell {i}" for i, cell in enumerate(nb.cells, 1)
            if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)]


def test_tracked_notebooks_have_no_outputs():
    notebooks = tracked_notebooks()
    assert "plots/transfer_plots.ipynb" in notebooks
    dirty = {path: cells for path in notebooks if (cells := executed_cells(staged(path)))}
    assert not dirty, "notebooks committed with outputs:\n" + "\n".join(
        f"  {path}: {', '.join(cells)}; clear them: .venv/bin/jupyter nbconvert --clear-output --inplace {path}"
        f" && git add {path}" for path, cells in dirty.items())


def test_the_check_sees_outputs_and_the_command_it_names_clears_them(tmp_path):
    copy = tmp_path / "transfer_plots.ipynb"
    shutil.copy(ROOT / "plots" / "transfer_plots.ipynb", copy)
    nb = nbformat.read(copy, as_version=4)
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    nb.cells[code[0]].outputs = [nbformat.v4.new_output("stream", name="stdout", text="results: ...\n")]
    nb.cells[code[1]].execution_count = 2
    nbformat.write(nb, copy)
    assert executed_cells(nbformat.read(copy, as_version=4)) == [f"cell {code[0] + 1}", f"cell {code[1] + 1}"]
    subprocess.run([str(JUPYTER), "nbconvert", "--clear-output", "--inplace", str(copy)], check=True,
                   capture_output=True)
    assert executed_cells(nbformat.read(copy, as_version=4)) == []
    cleared, committed = (nbformat.read(p, as_version=4) for p in (copy, ROOT / "plots" / "transfer_plots.ipynb"))
    assert [c.source for c in cleared.cells] == [c.source for c in committed.cells]
