"""Stage 3: lists -> databases (LMDB or LevelDB) and mean files, the way Caffe's tools make them, only faster.

For each dataset folder `<data_dir>/<dataset>/` holding a files.txt:
  lmdb/ (or leveldb/)   the records, in an order the kit shuffled with a fixed seed (db_list.txt: that order)
  mean.binaryproto      the mean image, as compute_image_mean computes it
  db.json               the build record: list md5, counts, settings; `complete` is written last
  bad_images.txt        images that could not be read (only when there were some)
A complete database built from the same list and settings is skipped; one left half way is rebuilt; finished work
built differently is only replaced with --force. `--shared-images` writes one resized image tree for all datasets
instead (see xfer/sharedimages.py).
"""
import datetime
import fnmatch
import os
import shutil
import tempfile
import time
from pathlib import Path


from ..errors import XferError
from ..paths import DATA_DIR, write_bytes_atomic, write_text_atomic
from ..progress import say, tqdm
from . import dbformat, writers
from .listio import LIST_NAME, label_summary, md5_file, read_list
from .records import (BAD_NAME, MEAN_NAME, RECORD_NAME, bad_summary, check_disk, database_order, image_root,
                      read_record, state_of, write_bad_report, write_record)

ORDER_NAME = "db_list.txt"
WRITERS = ("parallel", "caffe")
# Disk estimate of a JPEG record (quality 95) against a raw one: measured 0.15 on photographs at 256x256
# (docs/datasets.md); noise-like images compress less, and the LMDB map grows when it must.
ENCODED_SHARE = 0.25


def dataset_names(data_dir) -> list:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return []
    return sorted(p.name for p in data_dir.iterdir() if (p / LIST_NAME).is_file() and not p.name.startswith("_"))


def select_datasets(data_dir, patterns) -> list:
    """Datasets matching the names or fnmatch patterns given (all of them for none)."""
    names = dataset_names(data_dir)
    if not names:
        raise XferError("no dataset lists in the data dir", path=data_dir,
                        fix="make them first with `xfer imagenet-lists` and `xfer splits`")
    if not patterns:
        return names
    chosen = []
    for pattern in patterns:
        hits = fnmatch.filter(names, pattern)
        if not hits:
            raise XferError(f"no dataset {pattern!r} in {data_dir}", fix=f"choose among: {', '.join(names)}")
        chosen += [h for h in hits if h not in chosen]
    return chosen


def settings_of(backend, options, seed, mode) -> dict:
    """What db.json records of a build and what a rebuild must match. An encoded build records its format and JPEG
    quality (mode "encoded"), so raw and encoded output, or JPEGs of another quality, are never mixed silently."""
    settings = {"backend": backend, "resize": options.resize, "gray": options.gray, "shuffle_seed": seed, "mode": mode}
    if options.encode:
        settings.update(mode="encoded", encode_type=options.encode, jpeg_quality=writers.JPEG_QUALITY)
    return settings


def check_arguments(backend, writer, options, shared_images) -> None:
    if backend not in dbformat.BACKENDS:
        raise XferError(f"unknown backend {backend!r}", fix=f"use one of {', '.join(dbformat.BACKENDS)}")
    if writer not in WRITERS:
        raise XferError(f"unknown writer {writer!r}", fix=f"use one of {', '.join(WRITERS)}")
    if not options.encode:
        return
    if shared_images:
        raise XferError("--encoded and --shared-images do not go together",
                        fix="choose one: --encoded writes JPEG records into each database, --shared-images one PNG "
                            "tree for all datasets")
    if options.resize <= 0:
        raise XferError("--encoded needs --resize N (N > 0)",
                        fix="pass --resize 256 (the paper's): with --resize 0 convert_imageset stores JPEG files as "
                            "they are (their own quality and size; a gray or CMYK file keeps its channels)")


def what_differs(record, settings) -> str:
    """The settings a rebuild would change, as 'key: built -> asked' (a raw rebuild over an encoded one names mode)."""
    changed = [f"{k}: {record.get(k)} -> {v}" for k, v in settings.items() if record.get(k) != v]
    return "; ".join(changed) or "its files.txt changed"


def find_missing(entries, root, desc) -> list:
    """Indices of entries whose image file is absent (one stat per image, with a progress bar)."""
    root = str(root)
    return [i for i, (image, _) in enumerate(tqdm(entries, desc=f"{desc}: check", unit="img", disable=None,
                                                 leave=False))
            if not os.path.isfile(os.path.join(root, image))]


def probe_record_bytes(entries, root, options, sample=16) -> int:
    """Bytes of one raw record: resize x resize, or (resize=0) the largest of a few images' sizes."""
    channels = 1 if options.gray else 3
    if options.resize > 0:
        raw = dbformat.record_bytes(channels, options.resize, options.resize)
        return int(raw * ENCODED_SHARE) if options.encode else raw
    from PIL import Image
    largest = 1
    for image, _ in entries[:sample]:
        try:
            with Image.open(os.path.join(str(root), image)) as img:
                largest = max(largest, img.size[0] * img.size[1])
        except OSError:
            continue
    return dbformat.record_bytes(channels, 1, largest)


def temp_dir_for(need_bytes, fallback) -> Path:
    """RAM-backed /dev/shm when it has room for need_bytes (twice over), else the fallback folder."""
    if writers.SHM.is_dir() and shutil.disk_usage(writers.SHM).free > 2 * need_bytes:
        return writers.SHM
    Path(fallback).mkdir(parents=True, exist_ok=True)
    return Path(fallback)


class Job:
    """One dataset to build: its list, order, image root and size estimate.

    The lists are checked and measured up front, then dropped (release) and read again when the dataset's turn
    comes (load): the 33 ImageNet lists together hold ~10 million lines.
    """

    def __init__(self, data_dir, dataset, images_root, backend, options, seed, jobs):
        self.dataset, self.folder, self.seed = dataset, Path(data_dir) / dataset, seed
        self.list_path = self.folder / LIST_NAME
        self.list_md5 = md5_file(self.list_path)
        self.root = image_root(dataset, images_root, data_dir)
        self.load()
        self.record_bytes = probe_record_bytes(self.ordered, self.root, options)
        record_disk = dbformat.disk_per_record("lmdb", self.record_bytes)
        self.tmp_dir, self.block = writers.temp_and_block(len(self.entries), record_disk, jobs, self.folder)
        self.disk = len(self.entries) * dbformat.disk_per_record(backend, self.record_bytes)
        self.temp_disk = writers.temp_disk(self.tmp_dir, self.block, record_disk)

    def load(self) -> None:
        self.entries = read_list(self.list_path)
        self.order = database_order(len(self.entries), self.seed)
        self.ordered = [self.entries[i] for i in self.order]

    def release(self) -> None:
        self.entries = self.order = self.ordered = None


def build_one(job, backend, options, writer, jobs, skip_bad, settings, mean=True) -> dict:
    folder, started = job.folder, time.time()
    final, partial = folder / backend, folder / f".{backend}.partial"
    write_record(folder, dict(read_record(folder), complete=False))  # from here on, any old output is not trusted
    for stale in (partial, final, folder / "lmdb", folder / "leveldb", folder / MEAN_NAME, folder / BAD_NAME):
        dbformat.remove_db(stale)
    missing = set(find_missing(job.ordered, job.root, job.dataset))
    if missing and not skip_bad:  # fail before converting anything
        bad = bad_entries(job, missing, missing)
        raise bad_summary(job.dataset, bad, write_bad_report(folder, bad))
    write_text_atomic(folder / ORDER_NAME, "".join(f"{image} {label}\n" for image, label in job.ordered))
    with tqdm(total=len(job.ordered), desc=job.dataset, unit="img", disable=None) as bar:
        if writer == "caffe":
            tmp = Path(tempfile.mkdtemp(prefix="xfer-caffe-", dir=folder))
            try:
                result = writers.write_caffe(job.ordered, job.root, partial, backend, options, tmp, mean, bar)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            result = writers.write_parallel_db(job.ordered, job.root, partial, backend, options, jobs, job.tmp_dir,
                                                map_size=job.disk * 1.1 + (64 << 20), mean=mean, progress=bar,
                                                block=job.block)
    failed = result.failed_lines()
    bad = bad_entries(job, failed, missing)
    if bad:
        report = write_bad_report(folder, bad)
        if not skip_bad:
            dbformat.remove_db(partial)
            raise bad_summary(job.dataset, bad, report)
    if result.count == 0:
        raise XferError(f"{job.dataset}: no image could be read", path=job.list_path, fix="check --images")
    os.replace(partial, final)
    if result.mean_blob is not None:
        write_bytes_atomic(folder / MEAN_NAME, result.mean_blob.SerializeToString())
    record = dict(settings, dataset=job.dataset, list=LIST_NAME, list_md5=job.list_md5, entries=len(job.entries),
                  count=result.count, bad=len(bad), labels=label_summary(job.entries), output=backend,
                  images_root=str(job.root), writer=writer,
                  mean=MEAN_NAME, order=ORDER_NAME, seconds=round(time.time() - started, 1),
                  built=datetime.datetime.now().isoformat(timespec="seconds"), complete=True)
    write_record(folder, record)
    return record


def bad_entries(job, failed, missing) -> list:
    """[(files.txt line, image, reason)] for database-order indices that did not make it into the database."""
    bad = []
    for i in sorted(failed, key=lambda i: job.order[i]):
        reason = "missing" if i in missing else "unreadable (OpenCV could not decode it)"
        bad.append((int(job.order[i]) + 1, job.ordered[i][0], reason))
    return bad


def build_databases(data_dir=DATA_DIR, images_root=None, datasets=None, backend="lmdb", resize=256, gray=False,
                    jobs=None, writer="parallel", skip_bad=False, force=False, shared_images=False, shuffle_seed=0,
                    mean=True, encoded=False) -> list:
    """Build the databases (or, with shared_images, the shared image tree and image lists) of the datasets.

    datasets: names or fnmatch patterns (None: every dataset with a files.txt). resize=0 keeps each image's size.
    encoded: records hold each resized image as a JPEG (quality 95: `convert_imageset --encoded --encode_type=jpg`)
    instead of raw pixels; Caffe's Data layer decodes them, and the mean is of the decoded pixels (as
    compute_image_mean computes it on such a database).
    Returns the db.json records of the datasets built or already up to date.
    """
    options = writers.Options(resize, gray, encode="jpg" if encoded else None)
    check_arguments(backend, writer, options, shared_images)
    jobs = max(1, int(jobs or os.cpu_count() or 1))
    names = select_datasets(data_dir, datasets)
    if shared_images:
        from .sharedimages import build_shared  # lazy for start-up: PIL loads only in the disk-saving mode
        return build_shared(data_dir, names, images_root, options, jobs, skip_bad, force, shuffle_seed)
    settings = settings_of(backend, options, shuffle_seed, "database")
    todo, records = [], []
    for name in names:
        folder = Path(data_dir) / name
        state = state_of(folder, md5_file(folder / LIST_NAME), settings)
        if state == "done":
            records.append(read_record(folder))
            continue
        if state == "different" and not force:
            raise XferError(f"{name}: a finished database built from another list or settings is there"
                            f" ({what_differs(read_record(folder), settings)})",
                            path=folder / RECORD_NAME, fix="pass --force to rebuild it")
        todo.append(Job(data_dir, name, images_root, backend, options, shuffle_seed, jobs))
        todo[-1].release()
    if records:
        say(f"xfer db: up to date: {', '.join(r['dataset'] for r in records)}")
    if todo:
        need = sum(job.disk for job in todo) + max(job.temp_disk for job in todo)
        check_disk(data_dir, need, f"{len(todo)} database(s)")
    for job in todo:
        job.load()
        records.append(build_one(job, backend, options, writer, jobs, skip_bad, settings, mean))
        job.release()
    return records
