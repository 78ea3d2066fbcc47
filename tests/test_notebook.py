"""plots/transfer_plots.ipynb: committed clean (the kit's kernel, no outputs, no parsing code), executed end to end
with nbclient on the paper's logs chosen by XFER_RESULTS, and its choice of results tree when nothing is set."""
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from xfer.logs import parser
from xfer.paths import RESULTS_DIR

NOTEBOOK = Path(__file__).resolve().parent.parent / "plots" / "transfer_plots.ipynb"
DEMO_LOG_LINE = "I20261203 08:00:00.000000 1 solver.cpp:228] Iteration 0, loss = 6.9\n"


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def outputs_text(nb) -> str:
    return "\n".join(out.get("text", "") for cell in code_cells(nb) for out in cell.outputs)


def test_committed_clean():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "xfer" and nb.metadata.kernelspec.language == "python"
    code = code_cells(nb)
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert re.search(r"^results_dir = None\b", code[0].source, re.M)  # the one setting a user edits, first
    imports = [i for i, c in enumerate(code) if re.search(r"^\s*(from|import) xfer\b", c.source, re.M)]
    assert len(imports) == 1, "every xfer import in one cell (the module layout may move)"
    source = "\n".join(c.source for c in code)
    assert not re.search(r"gzip|zlib|re\.compile|Test score|readline|open\(", source)  # the kit parses, not this


@pytest.mark.slow
def test_executes_on_the_paper_logs(paper_dir, tmp_path, tmp_path_factory, monkeypatch):
    from nbclient import NotebookClient
    monkeypatch.setenv("XFER_CACHE", str(tmp_path_factory.getbasetemp() / "xfer-cache"))  # the kernel inherits it
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("XFER_RESULTS", str(paper_dir / "results"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first = code_cells(nb)[0]
    first.source = first.source.replace('plot_dir = "."', f"plot_dir = {str(tmp_path)!r}")
    NotebookClient(nb, timeout=300, kernel_name=nb.metadata.kernelspec.name,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = outputs_text(nb)
    assert f"results: {paper_dir / 'results'} (from XFER_RESULTS)" in text
    assert "half0A" in text and "baseB" in text and "0: 0.6251" in text
    assert "layer by layer: skipped" in text  # logs without weights: no CKA or probe, and it says so
    for base in ("result_transfer", "result_transfer_lines", "result_transfer_lines_notext",
                 "result_random_nm_combined", "result_reduced", "result_reduced_log"):
        assert (tmp_path / f"{base}.pdf").stat().st_size > 0 and (tmp_path / f"{base}.png").stat().st_size > 0
    images = [out for cell in code_cells(nb) for out in cell.outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 7  # six figures and the training curves
    assert all(out.output_type != "error" for cell in code_cells(nb) for out in cell.outputs)


def choice_cell(nb):
    return next(c for c in code_cells(nb) if "choose_results(" in c.source)


@pytest.mark.slow
def test_chooses_results_without_an_edit(tmp_path, monkeypatch):
    """Nothing set: the kit's results/ if it holds logs, else the demo's, else one message saying what to set.
    Then XFER_RESULTS, and the first cell's results_dir over it. One kernel; the choice cell re-run per case."""
    from nbclient import NotebookClient
    cache, mine, other = tmp_path / "cache", tmp_path / "mine", tmp_path / "other"
    mine.mkdir()
    other.mkdir()
    monkeypatch.setenv("XFER_CACHE", str(cache))  # the demo's default output: <cache>/demo, empty for now
    monkeypatch.delenv("XFER_RESULTS", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first, choose = code_cells(nb)[0], choice_cell(nb)
    demo_log = cache / "demo" / "results" / "half0A" / "261203_080000_half0A.log"
    paper_log = cache / "paper" / "results" / "half0A" / "140403_063910_half0A.o1"
    cases = [  # (what the case changes, then the first cell's results_dir)
        ("", None),
        (f"from pathlib import Path\nPath({str(paper_log.parent)!r}).mkdir(parents=True)\n"
         f"Path({str(paper_log)!r}).write_text({DEMO_LOG_LINE!r})", None),
        (f"Path({str(demo_log.parent)!r}).mkdir(parents=True)\n"
         f"Path({str(demo_log)!r}).write_text({DEMO_LOG_LINE!r})", None),
        (f"import os\nos.environ['XFER_RESULTS'] = {str(tmp_path / 'nowhere')!r}", None),
        (f"os.environ['XFER_RESULTS'] = {str(other)!r}", None),
        ("", str(mine)),
    ]
    nb.cells = [first]
    for change, chosen in cases:
        nb.cells += [nbformat.v4.new_code_cell(f"{change}\nresults_dir = {chosen!r}"),
                     nbformat.v4.new_code_cell(choose.source)]
    NotebookClient(nb, timeout=120, kernel_name="xfer", allow_errors=True,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    results = [cell.outputs for cell in nb.cells[2::2]]
    paper_case = results.pop(1)
    kit_has_logs = any(parser.find_logs(folder) for folder in parser.net_dirs(RESULTS_DIR))
    if kit_has_logs:  # a checkout where nets were trained: results/ comes first
        assert "(the kit's results/, which hold training logs)" in results[0][0].text
    else:
        error = results[0][0]
        assert error.output_type == "error" and error.ename == "NothingToPlot"
        assert error.traceback == [f"Nothing to plot: {error.evalue}"]  # one message, no traceback
        assert str(RESULTS_DIR) in error.evalue and str(cache / "demo" / "results") in error.evalue
        assert "set results_dir in the first code cell (or XFER_RESULTS" in error.evalue.replace("Set", "set")
        assert "`xfer paper`" in error.evalue and str(cache / "paper" / "results") in error.evalue
        assert paper_case[0].text == f"results: {cache / 'paper' / 'results'} (the paper's logs, fetched by " \
                                     "`xfer paper`)\n"
        assert results[1][0].text == f"results: {cache / 'demo' / 'results'} (the demo's results, which hold " \
                                     "training logs)\n"
    assert results[2][0].output_type == "error" and "nowhere (from XFER_RESULTS) is not a directory" in \
        results[2][0].evalue
    assert results[3][0].text == f"results: {other} (from XFER_RESULTS)\n"
    assert results[4][0].text == f"results: {mine} (from results_dir above)\n"


@pytest.mark.slow
def test_shows_the_papers_figures_beside_your_own(fetched_cache, paper_dir, tmp_path, monkeypatch):
    """After `xfer paper`, with a results tree of one's own (here a few of the paper's nets, copied): one's own
    figures with the paper overlaid on Figure 2, then the paper's own figures from the fetched logs."""
    from nbclient import NotebookClient
    mine = tmp_path / "mine"
    for name in ["half0A", "half0B"] + [f"transfer0A0B_1_{n}" for n in range(1, 8)]:
        shutil.copytree(paper_dir / "results" / name, mine / name)
    monkeypatch.setenv("XFER_CACHE", str(fetched_cache))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("XFER_RESULTS", str(mine))
    monkeypatch.delenv("XFER_PAPER_DIR", raising=False)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    first = code_cells(nb)[0]
    first.source = first.source.replace('plot_dir = "."', f"plot_dir = {str(tmp_path / 'plots')!r}")
    NotebookClient(nb, timeout=300, kernel_name=nb.metadata.kernelspec.name,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = outputs_text(nb)
    paper_tree = fetched_cache / "paper" / "results"
    assert f"the paper's logs: {paper_tree}" in text and f"overlaid on Figure 2: {paper_tree}" in text
    assert (tmp_path / "plots" / "compare_transfer_lines.png").stat().st_size > 0
    for base in ("result_transfer_lines", "result_random_nm_combined", "result_reduced"):
        assert (tmp_path / "plots" / "paper" / f"{base}.png").stat().st_size > 0, base
    assert all(out.output_type != "error" for cell in code_cells(nb) for out in cell.outputs)
