"""The render record: what `xfer render` last wrote into a net folder, kept beside it as `render.json`.

With it a later render can tell a file that is still what it wrote (safe to update from changed templates) from a
file a person edited by hand (kept until --force), and every verb that takes a net folder knows the folder's suite
and the overrides it was rendered with. The record holds no time stamp: rendering twice gives the same bytes, so
the records committed under results/ change only when a rendered file does.

  {"format": 1, "net": "transfer0A0B_1_3", "suite": "paper", "overrides": {"max_iter": 1000},
   "backend": "lmdb", "shared_images": false, "version": "<sha256 of templates + registry entry + overrides>",
   "files": {"imagenet_solver.prototxt": "<sha256>", ...}, "links": {"imagenet_mean.binaryproto": "...", ...}}
"""
import hashlib
import json
from pathlib import Path

from ..errors import XferError
from ..paths import write_text_atomic
from . import layout

RECORD_FILE = layout.RENDER_RECORD
FORMAT = 1


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path) -> "str | None":
    """The sha256 of a file's bytes, or None when there is no such file."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def record_path(folder) -> Path:
    return Path(folder) / RECORD_FILE


def read_record(folder) -> "dict | None":
    """The folder's render record, or None when it has none (never rendered, or rendered before records)."""
    path = record_path(folder)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise XferError(f"the render record does not parse: {exc.msg}", path=path, line=exc.lineno,
                        fix="delete it and run `xfer render --force` for this net") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or "files" not in record:
        raise XferError(f"not a render record of format {FORMAT}", path=path,
                        fix="delete it and run `xfer render --force` for this net")
    record.setdefault("overrides", {})
    return record


def make_record(net, suite, files, links=None, overrides=None, backend="lmdb", shared_images=False,
                version="") -> dict:
    """The record of one render. files: {name: sha256 of what was written} (text_sha256 of each text)."""
    digests = dict(sorted(files.items()))
    return {"format": FORMAT, "net": net, "suite": suite, "overrides": dict(sorted((overrides or {}).items())),
            "backend": backend, "shared_images": bool(shared_images), "version": version,
            "files": digests, "links": dict(sorted((links or {}).items()))}


def write_record(folder, net, suite, files, links=None, overrides=None, backend="lmdb", shared_images=False,
                 version="") -> dict:
    """Write the folder's record atomically (the same inputs give the same bytes); returns it."""
    record = make_record(net, suite, files, links, overrides, backend, shared_images, version)
    text, path = json.dumps(record, indent=1, sort_keys=True) + "\n", record_path(folder)
    if not path.is_file() or path.read_text() != text:  # an unchanged record keeps its file (and its mtime)
        write_text_atomic(path, text)
    return record


def recorded_suite(folder, default=None) -> "str | None":
    """The suite a net folder was rendered for (its record), else `default`."""
    record = read_record(folder)
    return record["suite"] if record and record.get("suite") else default


def recorded_overrides(folder) -> dict:
    """The overrides the folder was last rendered with ({} without a record)."""
    record = read_record(folder)
    return dict(record["overrides"]) if record else {}



def version_digest(templates_dir, entry: dict) -> str:
    """One digest of what a render reads: every template file (names and bytes) and the net's registry entry
    plus the render's flags and overrides (`entry`, plain JSON data)."""
    digest = hashlib.sha256()
    for path in sorted(Path(templates_dir).rglob("*.j2")):
        digest.update(str(path.relative_to(templates_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(json.dumps(entry, sort_keys=True, default=str).encode())
    return digest.hexdigest()
