"""Shared fixtures: the paper's reference files (from ../shared/paper, never copied) and the Caffe build."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAPER = Path(os.environ.get("XFER_PAPER_DIR", ROOT.parent / "shared" / "paper"))


@pytest.fixture(scope="session")
def paper_dir() -> Path:
    """The original study's logs and lists; tests that need them skip (with the reason) where it is absent."""
    if not PAPER.is_dir():
        pytest.skip(f"the paper's reference files are not at {PAPER} (set XFER_PAPER_DIR)")
    return PAPER


@pytest.fixture(scope="session")
def caffe():
    """pycaffe, imported quietly; fails (not skips) when the build is missing, since `make test` builds it."""
    from xfer import caffeenv
    return caffeenv.import_caffe()


@pytest.fixture(scope="session")
def caffe_tool():
    from xfer import caffeenv
    return caffeenv.tool
