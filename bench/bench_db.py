"""Benchmark: the kit's parallel database writer against Caffe's own convert_imageset, side by side in one run.

Generates ImageNet-like JPEGs (500x375, made from the real photographs that ship with scikit-image: random crops,
scales, flips and colour shifts), then on the same shuffled list times
  1. one `convert_imageset` (what the paper ran), and the parallel writer (`xfer db --writer parallel`);
  2. the same with the mean: convert_imageset + compute_image_mean, against the writer summing during its merge;
checks that both give the same records (keys and serialized Datum bytes) and the same mean bytes, measures the
single-core conversion rate into RAM (the ceiling per core), the disk per image of LMDB, LevelDB and the shared PNG
tree, and projects the disk of the paper's 22 ILSVRC12 datasets. Figures: docs/datasets.md.

Usage: .venv/bin/python bench/bench_db.py [--images 8000] [--jobs N] [--rounds 2] [--dir DIR (keeps the images)]
"""
import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image

from xfer.data import databases, dbformat, writers
from xfer.caffeenv import tool
from xfer.data.sharedimages import PngTreeSink

PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png",
          "hubble_deep_field.jpg")
WIDTH, HEIGHT = 500, 375
# ILSVRC12: 1,281,167 training and 50,000 validation images in 1000 classes (732 to 1300 per class).
ILSVRC_TRAIN, ILSVRC_VALID = 1281167, 50000
REDUCED = (1, 2, 5, 10, 25, 50, 100, 250, 500, 750, 1000)


def photos():
    import skimage
    folder = Path(skimage.__file__).parent / "data"
    return [np.asarray(Image.open(folder / name).convert("RGB")) for name in PHOTOS]


def generate_range(args):
    """Images start..stop-1: a random crop of a random photo, scaled to 500x375, flipped, colour shifted."""
    root, start, stop = args
    sources, lines = photos(), []
    for i in range(start, stop):
        rng = np.random.RandomState(i)
        src = sources[rng.randint(len(sources))]
        h, w = src.shape[:2]
        ch, cw = int(h * rng.uniform(0.5, 1.0)), int(w * rng.uniform(0.5, 1.0))
        y, x = rng.randint(h - ch + 1), rng.randint(w - cw + 1)
        pixels = src[y:y + ch, x:x + cw]
        if rng.rand() < 0.5:
            pixels = pixels[:, ::-1]
        shifted = np.clip(pixels * rng.uniform(0.8, 1.2, 3) + rng.normal(0, 3, pixels.shape), 0, 255)
        img = Image.fromarray(shifted.astype(np.uint8)).resize((WIDTH, HEIGHT), Image.BICUBIC)
        label = i % 10
        rel = f"c{label}/img_{i:06d}.JPEG"
        (root / f"c{label}").mkdir(exist_ok=True)
        img.save(root / rel, quality=int(rng.uniform(75, 95)))
        lines.append((rel, label))
    return lines


def generate(root, n, jobs):
    """The images and their list; with --dir, images made by an earlier run (same count) are reused."""
    made = root / "generated.txt"
    if made.exists() and len(made.read_text().splitlines()) == n:
        return [(p, int(c)) for p, c in (line.rsplit(" ", 1) for line in made.read_text().splitlines())]
    pieces = [(root, n * k // jobs, n * (k + 1) // jobs) for k in range(jobs)]
    with Pool(jobs) as pool:
        entries = [line for part in pool.map(generate_range, pieces) for line in part]
    made.write_text("".join(f"{p} {c}\n" for p, c in entries))
    return entries


def cpu_seconds():
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def machine_cpu():
    """(busy, niced) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    user, nice, system, idle, iowait, irq, softirq = fields
    hz = os.sysconf("SC_CLK_TCK")
    return (user + system + irq + softirq) / hz, nice / hz


OTHERS = []  # CPU the other processes on the machine took during each timed run (cores on average)


def timed(fn):
    """(wall, cpu of this process and its children, value); notes what other processes took meanwhile."""
    wall, cpu, (busy, niced) = time.perf_counter(), cpu_seconds(), machine_cpu()
    value = fn()
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    busy_now, niced_now = machine_cpu()
    OTHERS.append(((busy_now - busy - cpu) / wall, (niced_now - niced) / wall))
    return wall, cpu, value


def run_tool(args, log, extra_env=None):
    env = dict(os.environ, **writers.TOOL_ENV, **(extra_env or {}))
    with open(log, "wb") as out:
        subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, env=env, check=True)


def convert_imageset(root, list_path, out, resize, extra_env=None):
    run_tool([tool("convert_imageset"), *writers.Options(resize).flags("lmdb"), writers.root_arg(root),
              str(list_path), str(out)], str(out) + ".log", extra_env)


def compute_image_mean(db, out):
    run_tool([tool("compute_image_mean"), "--backend=lmdb", str(db), str(out)], str(out) + ".log")


def same_records(a, b) -> bool:
    count = 0
    for (ka, va), (kb, vb) in zip(dbformat.iterate("lmdb", a), dbformat.iterate("lmdb", b)):
        if ka != kb or va != vb:
            return False
        count += 1
    return count == sum(1 for _ in dbformat.iterate("lmdb", a, values=False)) == \
        sum(1 for _ in dbformat.iterate("lmdb", b, values=False))


def disk_bytes(path) -> int:
    """Blocks really used (LMDB's data file is sparse up to its map size)."""
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_blocks * 512 for p in files)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def row(name, n, wall, cpu, base=None, others=True):
    ratio = f"   ratio {base / wall:.2f}x" if base else ""
    load_note = f"  [others: {OTHERS[-1][0]:.2f} + {OTHERS[-1][1]:.2f} niced cores]" if others and OTHERS else ""
    return f"  {name:<48} {wall:7.2f} s  {n / wall:7.1f} img/s  (cpu {cpu:6.2f} s){ratio}{load_note}"


def bench_writers(work, root, entries, args, shm):
    """The timed side-by-side runs; returns the figures of the best round of each."""
    list_path = work / "list.txt"
    writers.write_list_file(list_path, entries)
    n, options, best = len(entries), writers.Options(args.resize), {}

    OTHERS.clear()  # from here on: what other processes took during the timed writer runs

    def keep(name, wall, cpu):
        if name not in best or wall < best[name][0]:
            best[name] = (wall, cpu)

    for r in range(args.rounds):
        for d in ("caffe", "caffe_malloc", "par", "par_mean"):
            dbformat.remove_db(work / d)
        print(f"round {r + 1}: load average {load()}")
        wall, cpu, _ = timed(lambda: convert_imageset(root, list_path, work / "caffe", args.resize))
        print(row("convert_imageset (1 process)", n, wall, cpu))
        keep("caffe", wall, cpu)
        wall, cpu, _ = timed(lambda: convert_imageset(root, list_path, work / "caffe_malloc", args.resize,
                                                      writers.MALLOC_ENV))
        print(row("convert_imageset (1 process, the writer's malloc)", n, wall, cpu, best["caffe"][0]))
        keep("caffe_malloc", wall, cpu)
        wall, cpu, _ = timed(lambda: writers.write_parallel_db(entries, root, work / "par", "lmdb", options,
                                                                args.jobs, shm, n * 210000, mean=False))
        print(row(f"parallel writer ({args.jobs} convert_imageset)", n, wall, cpu, best["caffe"][0]))
        keep("par", wall, cpu)
        wall, cpu, _ = timed(lambda: compute_image_mean(work / "caffe", work / "caffe_mean.binaryproto"))
        keep("mean", wall, cpu)
        wall, cpu, result = timed(lambda: writers.write_parallel_db(entries, root, work / "par_mean", "lmdb",
                                                                     options, args.jobs, shm, n * 210000))
        keep("par_mean", wall, cpu)
        caffe_total = best["caffe"][0] + best["mean"][0]
        print(row("convert_imageset + compute_image_mean", n, caffe_total, best["caffe"][1] + best["mean"][1],
                  others=False))
        print(row("parallel writer with the mean", n, wall, cpu, caffe_total))
    busiest = (max(o[0] for o in OTHERS), max(o[1] for o in OTHERS))
    same = all(same_records(work / "caffe", work / d) for d in ("caffe_malloc", "par", "par_mean"))
    same_mean = (work / "caffe_mean.binaryproto").read_bytes() == result.mean_blob.SerializeToString()
    print(f"  identical records (keys + Datum bytes): {'yes' if same else 'NO'};  "
          f"identical mean file bytes: {'yes' if same_mean else 'NO'}")
    return best, same and same_mean, busiest


def bench_ceiling(work, root, entries, args, shm):
    """One convert_imageset (with the writer's malloc settings) into RAM: decode + resize + serialize, no disk."""
    sample = entries[: max(200, len(entries) // 4)]
    sub = Path(tempfile.mkdtemp(prefix="xfer-bench-", dir=shm))
    try:
        writers.write_list_file(sub / "list.txt", sample)
        wall, cpu, _ = timed(lambda: convert_imageset(root, sub / "list.txt", sub / "db", args.resize,
                                                      writers.MALLOC_ENV))
    finally:
        shutil.rmtree(sub)
    return len(sample) / wall


def bench_disk(work, root, entries, args, shm):
    """Bytes per image: LMDB (from the timed run), LevelDB, and the shared PNG tree; PNG size on the photos alone."""
    options, sample = writers.Options(args.resize), entries[:400]
    for name in ("ldb", "png", "photos", "photo_png"):
        dbformat.remove_db(work / name)
    lmdb_bytes = disk_bytes(work / "par" / "data.mdb") / len(entries)
    writers.write_parallel_db(sample, root, work / "ldb", "leveldb", options, args.jobs, shm, 0, mean=False)
    leveldb_bytes = disk_bytes(work / "ldb") / len(sample)
    png = writers.Options(args.resize, encode="png")
    writers.write_parallel(sample, root, PngTreeSink(work / "png"), png, args.jobs, shm, mean=False)
    png_bytes = disk_bytes(work / "png") / len(sample)
    photo_dir = work / "photos"
    photo_dir.mkdir()
    for i, pixels in enumerate(photos()):
        Image.fromarray(pixels).save(photo_dir / f"p{i}.png")
    plist = [(f"p{i}.png", 0) for i in range(len(PHOTOS))]
    writers.write_parallel(plist, photo_dir, PngTreeSink(work / "photo_png"), png, 1, shm, mean=False)
    photo_png = disk_bytes(work / "photo_png") / len(plist) - 4096 / 2  # less half a block of slack per file
    return lmdb_bytes, leveldb_bytes, png_bytes, photo_png


def projection(lmdb_bytes, leveldb_bytes, png_bytes):
    reduced = sum(1000 * n for n in REDUCED)  # an upper bound: classes smaller than n give all they have
    train = 6 * ILSVRC_TRAIN + reduced      # whole + 4 random splits + natman (each split is one full copy)
    records = train + 6 * ILSVRC_VALID
    images = ILSVRC_TRAIN + ILSVRC_VALID
    print(f"projection for the 22 ILSVRC12 datasets (33 lists, <= {records:,} records; {images:,} distinct images):")
    print(f"  LMDB databases      {records * lmdb_bytes / 1e12:6.2f} TB")
    print(f"  LevelDB databases   {records * leveldb_bytes / 1e12:6.2f} TB")
    print(f"  shared PNG tree     {images * png_bytes / 1e12:6.2f} TB  (plus lists and means, a few MB)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=8000)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--resize", type=int, default=256)
    parser.add_argument("--dir", help="work folder on disk (default: a temporary folder)")
    args = parser.parse_args(argv)
    work = Path(args.dir or tempfile.mkdtemp(prefix="xfer-bench-db-"))
    shm = databases.temp_dir_for(2 * args.images * 200000, work)
    try:
        root = work / "images"
        root.mkdir(parents=True, exist_ok=True)
        print(f"machine: {os.cpu_count()} cores; load average {load()}; shard databases in {shm}")
        wall, _, entries = timed(lambda: generate(root, args.images, args.jobs))
        order = databases.database_order(len(entries), 0)
        entries = [entries[i] for i in order]
        size = sum((root / p).stat().st_size for p, _ in entries) / len(entries)
        print(f"{len(entries)} JPEGs of {WIDTH}x{HEIGHT} (average {size / 1000:.0f} kB) ready in {wall:.0f} s; "
              f"resize {args.resize}x{args.resize}, {args.jobs} jobs")
        best, ok, busiest = bench_writers(work, root, entries, args, shm)
        ceiling = bench_ceiling(work, root, entries, args, shm)
        n = len(entries)
        print(f"best of {args.rounds} rounds:")
        print(row("convert_imageset (1 process)", n, *best["caffe"], others=False))
        print(row("convert_imageset (1 process, the writer's malloc)", n, *best["caffe_malloc"], best["caffe"][0],
                  others=False))
        print(row(f"parallel writer ({args.jobs} jobs)", n, *best["par"], best["caffe"][0], others=False))
        caffe_mean = (best["caffe"][0] + best["mean"][0], best["caffe"][1] + best["mean"][1])
        print(row("convert_imageset + compute_image_mean", n, *caffe_mean, others=False))
        print(row("parallel writer with the mean", n, *best["par_mean"], caffe_mean[0], others=False))
        print(f"  other processes took {busiest[0]:.2f} cores at most during a timed writer run "
              f"(+ {busiest[1]:.2f} niced)")
        print(f"  ceiling: one convert_imageset into RAM {ceiling:.1f} img/s per core -> x{args.jobs} = "
              f"{ceiling * args.jobs:.1f} img/s; the parallel writer reaches "
              f"{n / best['par'][0] / ceiling / args.jobs:.0%} of it")
        lmdb_b, leveldb_b, png_b, photo_png = bench_disk(work, root, entries, args, shm)
        print(f"disk per image: LMDB {lmdb_b / 1e3:.1f} kB, LevelDB {leveldb_b / 1e3:.1f} kB, shared PNG "
              f"{png_b / 1e3:.1f} kB (the 7 scikit-image photographs alone: {photo_png / 1e3:.1f} kB)")
        projection(lmdb_b, leveldb_b, png_b)
        print(f"load average at the end {load()}")
        return 0 if ok else 1
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
