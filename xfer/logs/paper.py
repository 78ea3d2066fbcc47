"""`xfer paper`: the original study's cached training logs, fetched into the kit's cache and verified.

The original repository holds every net's Caffe logs as results/<net>/*.gz (354 files in 148 folders). They are
what `xfer summary --paper`, `xfer plot --compare paper`, `xfer demo --full` and the notebook compare with. The
kit carries only facts about them (paper_logs.sha256 beside this module: digest, size and path of each log), never
the logs: a fetch copies them from a git repository, a local checkout (or its results/ folder) or a tarball of one,
checks every file against that list and refuses the lot if one is missing, extra or altered.

Where they land: paths.paper_dir() = <cache>/paper, holding results/ and fetch.json (what was fetched, from where).
The fetch fills a temporary folder beside it and renames it into place only when every log checked out, so an
earlier fetch is never replaced by a broken one, and never by a good one without --force.
"""
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from ..errors import XferError
from ..paths import paper_dir, paper_results, write_text_atomic
from ..progress import say

MANIFEST = Path(__file__).with_name("paper_logs.sha256")
DEFAULT_SOURCE = "https://github.com/yosinski/convnet_transfer"
RECORD = "fetch.json"
SHOWN_PROBLEMS = 10  # a wrong source can differ in every file: name the first few, count the rest


def read_manifest(path=MANIFEST) -> dict:
    """{'<net>/<file>.gz': (sha256, size)} from lines `sha256  size  net/file.gz` (# comments allowed)."""
    entries = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 3 or len(fields[0]) != 64 or not fields[1].isdigit():
            raise XferError(f"{path}:{number}: expected `<sha256>  <size>  <net>/<file>.gz`, got {line!r}; "
                            "restore the file from the kit's repository")
        entries[fields[2]] = (fields[0], int(fields[1]))
    return entries


def is_git_url(source: str) -> bool:
    return "://" in source or source.startswith("git@") or (source.endswith(".git") and not Path(source).exists())


def clone(url: str, work: Path) -> Path:
    """A shallow clone of url under work (only the newest commit: the logs never changed since 2014)."""
    dest = work / "clone"
    say(f"[paper] git clone --depth 1 {url}")
    proc = subprocess.run(["git", "clone", "--depth", "1", "--quiet", "--", url, str(dest)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise XferError(f"git clone {url} failed: {last}; check the URL, or give a local checkout or a tarball of "
                        "the original repository with --from")
    return dest


def unpack(archive: Path, work: Path) -> Path:
    """The tarball's files under work/unpacked (members that would land outside it are refused by tarfile)."""
    dest = work / "unpacked"
    say(f"[paper] unpack {archive}")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise XferError(f"{archive}: cannot unpack ({exc}); give a tarball of the original repository") from exc
    return dest


def find_results(root: Path, source) -> Path:
    """The folder of net folders in root: root/results (a checkout), one folder down (a tarball's top folder), or
    root itself (the results/ folder was given)."""
    tops = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")] if root.is_dir() else []
    for candidate in [root / "results"] + [top / "results" for top in tops] + [root]:
        if candidate.is_dir() and any(candidate.glob("*/*.gz")):
            return candidate
    raise XferError(f"{source}: no results/<net>/*.gz logs found; give the original repository (a git URL, a "
                    "checkout or a tarball of it) or its results/ folder")


def materialize(source: str, work: Path) -> Path:
    """The results/ folder of source, cloned or unpacked under work when it is not a local folder."""
    if is_git_url(source):
        return find_results(clone(source, work), source)
    path = Path(source)
    if path.is_dir():
        return find_results(path, source)
    if path.is_file() and tarfile.is_tarfile(path):
        return find_results(unpack(path, work), source)
    raise XferError(f"{source}: neither a git URL, a folder nor a tarball; give the original repository with --from")


def copy_hashed(src: Path, dest: Path) -> str:
    """Copy src to dest and return the sha256 of what was read (each log is read once)."""
    digest = hashlib.sha256()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as reader, open(dest, "wb") as writer:
        for block in iter(lambda: reader.read(1 << 20), b""):
            digest.update(block)
            writer.write(block)
    return digest.hexdigest()


def copy_and_check(results: Path, staging: Path, manifest: dict) -> list:
    """Copy every listed log into staging/results, checking it; the problems found (missing, altered, extra)."""
    found = {str(p.relative_to(results)) for p in results.glob("*/*.gz")}
    problems = [f"extra log {results / name}: not one of the paper's" for name in sorted(found - set(manifest))]
    step = max(1, len(manifest) // 10)
    for count, (name, (sha, size)) in enumerate(sorted(manifest.items()), 1):
        src = results / name
        if name not in found:
            problems.append(f"missing log {src} (expected sha256 {sha}, {size} bytes)")
        else:
            got = copy_hashed(src, staging / "results" / name)
            if got != sha or src.stat().st_size != size:
                problems.append(f"altered log {src}: sha256 {got}, {src.stat().st_size} bytes; expected sha256 "
                                f"{sha}, {size} bytes")
        if count % step == 0 or count == len(manifest):
            say(f"[paper] checked {count}/{len(manifest)} logs ({len(problems)} problems)")
    return problems


def refuse(problems: list, dest: Path) -> XferError:
    shown = problems[:SHOWN_PROBLEMS]
    more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
    kept = f"the logs fetched before are kept in {dest}" if dest.exists() else f"nothing was written to {dest}"
    return XferError(f"{len(problems)} of the source's logs do not match the paper's ({MANIFEST}):\n  "
                     + "\n  ".join(shown) + more + f"\n{kept}; fetch from the original repository (--from URL, "
                     "checkout or tarball)")


def fetched(dest=None) -> "dict | None":
    """The record of a complete fetch in dest (default paths.paper_dir()), or None."""
    record = Path(dest or paper_dir()) / RECORD
    return json.loads(record.read_text()) if record.is_file() else None


def install(staging: Path, dest: Path) -> None:
    """Rename staging to dest; a previous dest (--force) is moved aside first and removed only after."""
    old = None
    if dest.exists():
        old = dest.with_name(f".{dest.name}-old-{int(time.time())}")
        dest.rename(old)
    staging.rename(dest)
    if old is not None:
        shutil.rmtree(old)


def fetch(source=None, dest=None, force=False) -> Path:
    """Fetch and check the paper's logs into dest (default paths.paper_dir()); returns dest/results."""
    source, dest = str(source or DEFAULT_SOURCE), Path(dest or paper_dir())
    if fetched(dest) and not force:
        say(f"[paper] already fetched: {dest / 'results'} ({fetched(dest)['logs']} logs from "
            f"{fetched(dest)['source']}); --force fetches again")
        return dest / "results"
    if dest.exists() and not fetched(dest) and not force:
        raise XferError(f"{dest} exists but holds no complete fetch ({RECORD} is missing); remove it or pass --force")
    manifest = read_manifest()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".paper-fetch-", dir=dest.parent) as tmp:
        work = Path(tmp)
        results = materialize(source, work)
        staging = work / "staging"
        problems = copy_and_check(results, staging, manifest)
        if problems:
            raise refuse(problems, dest)
        record = dict(source=source, logs=len(manifest), nets=len({n.split("/")[0] for n in manifest}),
                      manifest_sha256=hashlib.sha256(MANIFEST.read_bytes()).hexdigest(),
                      fetched=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        write_text_atomic(staging / RECORD, json.dumps(record, indent=1, sort_keys=True) + "\n")
        install(staging, dest)
    say(f"[paper] {len(manifest)} logs of {record['nets']} nets verified in {dest / 'results'}")
    return dest / "results"


def fetched_results() -> Path:
    """The fetched logs' results tree ($XFER_PAPER_DIR/results when set), or one error naming the command."""
    tree = paper_results()
    if not tree.is_dir():
        raise XferError(f"the paper's logs are not fetched yet (looked in {tree}); fetch them with `xfer paper`")
    return tree


def resolve_tree(value) -> Path:
    """A results tree given on the command line: the word `paper` means the fetched logs."""
    return fetched_results() if str(value) == "paper" else Path(value)
