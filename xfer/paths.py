"""Where things live: the repository's folders, the cache outside it, and atomic writes."""
import contextlib
import hashlib
import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "ilsvrc12" / "data"
RESULTS_DIR = ROOT / "results"
TEMPLATES_DIR = ROOT / "prototxt_templates"
PLOTS_DIR = ROOT / "plots"
VENV_DIR = ROOT / ".venv"


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


def cache_dir() -> Path:
    """The kit's cache, outside the repository (Caffe builds, parse caches, demo data)."""
    if os.environ.get("XFER_CACHE"):
        return Path(os.environ["XFER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "xfer"


def paper_dir() -> Path:
    """Where `xfer paper` puts the original study's logs (results/<net>/*.gz) and its fetch record."""
    return cache_dir() / "paper"


def paper_results() -> Path:
    """The original study's results tree (one folder of Caffe logs per net) that summary, plot, the demo and the
    notebook compare with: $XFER_PAPER_DIR/results when set, else the logs `xfer paper` fetched (paper_dir())."""
    if os.environ.get("XFER_PAPER_DIR"):
        return Path(os.environ["XFER_PAPER_DIR"]) / "results"
    return paper_dir() / "results"


@contextlib.contextmanager
def atomic_path(target, suffix=""):
    """Yield a temporary path beside `target`; rename it over `target` only if the block succeeds.

    Readers never see a half-written file: either the old one or the complete new one.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600; a finished file gets the mode open() would have given it
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text_atomic(target, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_bytes_atomic(target, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def file_digest(path, algorithm="md5", block=1 << 22) -> str:
    """The hex digest of a file, read in blocks (databases and caffemodels can be large)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()
