"""plots/transfer_plots.ipynb: committed clean (Python 3, no outputs, no parsing code), and executed end to end
with nbclient on the paper's logs by editing its one path, as a user would."""
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "plots" / "transfer_plots.ipynb"


def test_committed_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3" and nb.metadata.kernelspec.language == "python"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    source = "\n".join(c.source for c in code)
    assert 'results_dir = Path("../results")' in source  # the one path a user edits
    assert not re.search(r"gzip|zlib|re\.compile|Test score|readline|open\(", source)  # the kit parses, not this


@pytest.mark.slow
def test_executes_on_the_paper_logs(paper_dir, tmp_path, tmp_path_factory, monkeypatch):
    from nbclient import NotebookClient
    monkeypatch.setenv("XFER_CACHE", str(tmp_path_factory.getbasetemp() / "xfer-cache"))  # the kernel inherits it
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "results_dir = " in cell.source:
            cell.source = cell.source.replace('Path("../results")', f'Path({str(paper_dir / "results")!r})')
            cell.source = cell.source.replace('plot_dir = Path(".")', f'plot_dir = Path({str(tmp_path)!r})')
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
                   ).execute()
    text = "\n".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
    assert "half0A" in text and "baseB" in text and "0: 0.6251" in text
    for base in ("result_transfer", "result_transfer_lines", "result_transfer_lines_notext",
                 "result_random_nm_combined", "result_reduced", "result_reduced_log"):
        assert (tmp_path / f"{base}.pdf").stat().st_size > 0 and (tmp_path / f"{base}.png").stat().st_size > 0
    images = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
              if "image/png" in out.get("data", {})]
    assert len(images) >= 7  # six figures and the training curves
    assert all(out.output_type != "error" for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs)
