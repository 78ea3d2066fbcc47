"""`xfer paper`: the original study's logs fetched from a real git repository (cloned over file://), a plain folder
and a tarball, each log checked against the committed manifest; a missing, extra or altered log refused by name with
the earlier fetch kept; and the verbs that compare with the paper finding the fetched logs by default."""
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from xfer.errors import XferError
from xfer.logs import paper

from conftest import run_xfer

ROOT = Path(__file__).resolve().parent.parent


def xfer(*args, cache, check=True):
    return run_xfer(*args, cache=cache, check=check)


def digests(tree: Path) -> dict:
    return {str(p.relative_to(tree)): p.read_bytes() for p in sorted(tree.glob("*/*.gz"))}


def test_manifest_lists_exactly_the_papers_logs(paper_dir):
    manifest = paper.read_manifest()
    assert len(manifest) == 354 and len({name.split("/")[0] for name in manifest}) == 148
    assert set(manifest) == {str(p.relative_to(paper_dir / "results")) for p in (paper_dir / "results").glob("*/*.gz")}


def test_git_fetch_gives_the_same_summary_as_the_reference_tree(fetched_cache, paper_dir):
    fetched = xfer("summary", "--paper", "--format", "json", cache=fetched_cache).stdout
    reference = xfer("summary", "--results", str(paper_dir / "results"), "--format", "json",
                     cache=fetched_cache).stdout
    numbers = json.loads(fetched)
    assert len(numbers) == 148 and fetched == reference
    record = json.loads((fetched_cache / "paper" / "fetch.json").read_text())
    assert record["logs"] == 354 and record["source"].startswith("file://")
    assert not list((fetched_cache).glob(".paper-fetch-*"))  # the temporary folder is gone


def test_second_fetch_keeps_the_first_without_force(fetched_cache, paper_repo):
    before = (fetched_cache / "paper" / "fetch.json").read_text()
    proc = xfer("paper", "--from", str(paper_repo), cache=fetched_cache)
    assert "already fetched" in proc.stdout and "--force" in proc.stdout
    assert (fetched_cache / "paper" / "fetch.json").read_text() == before


def test_plain_folder_and_tarball(paper_dir, tmp_path):
    results = paper.fetch(paper_dir, dest=tmp_path / "from-folder")  # a checkout-like folder holding results/
    assert digests(results) == digests(paper_dir / "results")
    archive = tmp_path / "convnet_transfer-master.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:  # the layout of a repository's tarball: one top folder
        tar.add(paper_dir / "results", arcname="convnet_transfer-master/results")
    results = paper.fetch(archive, dest=tmp_path / "from-tar")
    assert len(digests(results)) == 354


def altered_copy(paper_repo: Path, tmp_path: Path, change) -> Path:
    source = tmp_path / "source"
    shutil.copytree(paper_repo / "results", source / "results")
    change(source / "results")
    return source


def test_altered_log_refused_by_name_and_earlier_fetch_kept(fetched_cache, paper_repo, tmp_path):
    victim = "transfer0A0B_1_3/140415_235507_transfer0A0B.o240412.gz"
    expected = paper.read_manifest()[victim][0]
    source = altered_copy(paper_repo, tmp_path, lambda r: (r / victim).write_bytes((r / victim).read_bytes() + b"x"))
    before = digests(fetched_cache / "paper" / "results")
    proc = xfer("paper", "--from", str(source), "--force", cache=fetched_cache, check=False)
    assert proc.returncode == 2
    assert f"altered log {source / 'results' / victim}" in proc.stderr and expected in proc.stderr
    assert "the logs fetched before are kept" in proc.stderr
    assert digests(fetched_cache / "paper" / "results") == before


@pytest.mark.parametrize("change, words", [
    (lambda r: (r / "half0A" / "140403_063910_half0A.o227963.gz").unlink(), "missing log"),
    (lambda r: (r / "half0A" / "extra.o1.gz").write_bytes(b""), "extra log"),
])
def test_missing_or_extra_log_refused(paper_repo, tmp_path, change, words):
    source = altered_copy(paper_repo, tmp_path, change)
    with pytest.raises(XferError, match=words) as caught:
        paper.fetch(source, dest=tmp_path / "dest")
    assert "nothing was written" in str(caught.value) and not (tmp_path / "dest").exists()


def test_source_without_logs_and_bad_git_url(tmp_path):
    with pytest.raises(XferError, match="no results/<net>/\\*.gz logs found"):
        paper.fetch(tmp_path, dest=tmp_path / "dest")
    with pytest.raises(XferError, match="git clone file:///nowhere failed"):
        paper.fetch("file:///nowhere", dest=tmp_path / "dest")


def test_verbs_find_the_fetched_logs(fetched_cache, tmp_path):
    table = xfer("summary", "--paper", "--families", cache=fetched_cache).stdout
    assert "half0A" in table and "baseB" in table
    out = tmp_path / "plots"
    xfer("plot", "--results", "paper", "--out", str(out), cache=fetched_cache)
    assert (out / "result_transfer_lines.png").stat().st_size > 0 and (out / "result_reduced.png").is_file()
    bench = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_logs.py"), "--rounds", "1"],
                           env=dict(os.environ, XFER_CACHE=str(fetched_cache)), capture_output=True, text=True,
                           check=True).stdout
    assert "354 logs in 148 folders" in bench and "check: 148 nets summarised" in bench


def test_without_a_fetch_each_verb_says_what_to_run(tmp_path):
    proc = xfer("summary", "--paper", cache=tmp_path, check=False)
    assert proc.returncode == 2 and "fetch them with `xfer paper`" in proc.stderr
    empty = tmp_path / "results"
    (empty / "half0A").mkdir(parents=True)
    (empty / "half0B").mkdir()
    proc = xfer("summary", "--results", str(empty), cache=tmp_path)
    assert proc.stdout.splitlines() == [f"no training logs yet in {empty} (2 nets): train them with `xfer run`, or "
                                        "see the paper's own numbers: `xfer paper`, then `xfer summary --paper`"]
    assert proc.stderr == ""
    bench = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_logs.py")], capture_output=True, text=True,
                           env=dict(os.environ, XFER_CACHE=str(tmp_path)), check=True).stdout
    assert "skipped" in bench and "xfer paper" in bench
