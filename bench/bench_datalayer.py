"""Benchmark: how fast Caffe's data layers feed a net, per data mode and per CAFFE_DATA_THREADS, side by side.

Generates ImageNet-shaped images (256x256, random crops, flips and colour shifts of the photographs that ship with
scikit-image, saved as JPEG and as PNG, and the 500x375 JPEG each was resized from), writes them with the kit's Caffe
(`xfer db`, from the 500x375 JPEGs resized to 256 as for ImageNet) into LMDB and LevelDB, raw and `--encoded`
(JPEG records at quality 95), each with its own mean file, and times, through pycaffe,
a net holding only the data layer as the paper's nets have it: TRAIN phase, batch 256, crop 227, mirror, mean file.
Modes: Data on each database; ImageData on the JPEG and on the PNG tree (the kit's `--shared-images` is a PNG tree),
and on the 500x375 JPEGs resized in the layer (`new_height/new_width: 256`, what convert_imageset does before it
stores an image: ImageNet's own tree, no copy). Each (mode, threads) runs in its own process (the patched Caffe reads
CAFFE_DATA_THREADS once); thread counts of one mode run one after another, so they see the same machine. img/s =
images of the timed batches / their wall time, after the prefetch queue has been drained (from then on every forward
waits for the layer). The last timed batch's bytes must be the same at every thread count (tests/test_data_threads.py
checks it batch by batch).

It prints a table: disk per image; img/s per thread count with the cores the process got (CPU seconds per wall
second: on a shared machine the threads may not get theirs); the ratio against one thread; CPU per image; the threads
one net needs for the 4,560 img/s one H100 computes CaffeNet at (from the CPU per image), and 8 nets on an 8-GPU
node; the load average at the start and end of each mode.
Figures: docs/performance.md, docs/datasets.md.

Usage: .venv/bin/python bench/bench_datalayer.py [--images 512] [--batches 4] [--rounds 1] [--threads 1,2]
                                                  [--modes lmdb,...] [--dir DIR (keeps the images and databases)]
"""
import argparse
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png", "motorcycle_right.png",
          "hubble_deep_field.jpg")
SIZE, CROP, BATCH = 256, 227, 256
H100_IMG_S = 4560  # CaffeNet, cuDNN, one H100 (docs/cuda.md)
NODE_GPUS = 8
MODES = ("lmdb", "leveldb", "lmdb-jpeg", "leveldb-jpeg", "imagedata-jpeg", "imagedata-png", "imagedata-orig")
DB_MODES = MODES[:4]  # built by the kit's `xfer db` (-jpeg: `xfer db --encoded`)
ORIG_W, ORIG_H = 500, 375  # ILSVRC's typical size: imagedata-orig reads these and resizes to 256x256 in the layer
WARMUP = 5  # the prefetch queue holds 4 batches: drained by the 5th forward

DATA = """name: "data_only"
layer {{ name: "data" type: "{type}" top: "data" top: "label" include {{ phase: TRAIN }}
  transform_param {{ crop_size: {crop} mirror: true mean_file: "{mean}" }}
  {param} }}
"""


def generate(root: Path, n: int) -> list:
    """n images as JPEG (quality 75-95) and PNG at 256x256, and the 500x375 JPEG they were resized from (orig/);
    returns the list lines `cK/img_N label` without extension."""
    import skimage
    folder = Path(skimage.__file__).parent / "data"
    sources = [np.asarray(Image.open(folder / name).convert("RGB")) for name in PHOTOS]
    lines = []
    for i in range(n):
        rng = np.random.RandomState(i)
        src = sources[rng.randint(len(sources))]
        h, w = src.shape[:2]
        side = int(min(h, w) * rng.uniform(0.5, 1.0))
        y, x = rng.randint(h - side + 1), rng.randint(w - side + 1)
        pixels = src[y:y + side, x:x + side]
        if rng.rand() < 0.5:
            pixels = pixels[:, ::-1]
        shifted = np.clip(pixels * rng.uniform(0.8, 1.2, 3) + rng.normal(0, 3, pixels.shape), 0, 255)
        orig = Image.fromarray(shifted.astype(np.uint8)).resize((ORIG_W, ORIG_H), Image.BICUBIC)
        img = orig.resize((SIZE, SIZE), Image.BILINEAR)
        label = i % 10
        (root / f"c{label}").mkdir(exist_ok=True)
        (root / "orig" / f"c{label}").mkdir(parents=True, exist_ok=True)
        orig.save(root / "orig" / f"c{label}" / f"img_{i:06d}.jpg", quality=int(rng.uniform(75, 95)))
        img.save(root / f"c{label}" / f"img_{i:06d}.jpg", quality=int(rng.uniform(75, 95)))
        img.save(root / f"c{label}" / f"img_{i:06d}.png")
        lines.append((f"c{label}/img_{i:06d}", label))
    return lines


def build_with_xfer_db(work: Path, mode: str) -> None:
    """The kit's own `xfer db` (raw, or `--encoded` for the -jpeg modes) on the 500x375 JPEGs, resized to 256 as
    for ImageNet; one dataset folder per mode under work/data/ (the command is printed: it is what was measured)."""
    folder = work / "data" / mode
    if (folder / "db.json").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "files.txt").write_text((work / "orig.txt").read_text())
    args = ["db", "--data-dir", str(work / "data"), "--images", str(work / "images"), "--backend",
            mode.split("-")[0], "--resize", str(SIZE), *(["--encoded"] if mode.endswith("jpeg") else []), mode]
    print(f"[bench_datalayer] xfer {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "xfer.cli", *args], check=True, capture_output=True)


def disk_bytes(path: Path) -> int:
    """Blocks in use (an LMDB file is sparse), of a file or everything under a folder."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_blocks * 512 for p in files)


def prepare(work: Path, n: int) -> dict:
    """Images, lists, databases and the mean under work/ (reused when already there); returns {mode: (net, disk)}."""
    images = work / "images"
    if not (work / "jpg.txt").exists():
        shutil.rmtree(images, ignore_errors=True)
        images.mkdir(parents=True)
        lines = generate(images, n)
        for ext in ("png", "jpg"):
            (work / f"{ext}.txt").write_text("".join(f"{path}.{ext} {label}\n" for path, label in lines))
        (work / "orig.txt").write_text("".join(f"orig/{path}.jpg {label}\n" for path, label in lines))
    for mode in DB_MODES:
        build_with_xfer_db(work, mode)
    mean = work / "data" / "lmdb" / "mean.binaryproto"  # the raw database's: for the ImageData modes
    out = {}
    for mode in MODES:
        if mode.startswith("imagedata"):
            listing = {"imagedata-jpeg": "jpg", "imagedata-png": "png", "imagedata-orig": "orig"}[mode]
            resize = f"new_height: {SIZE} new_width: {SIZE} " if mode == "imagedata-orig" else ""
            param = (f'image_data_param {{ source: "{work / (listing + ".txt")}" root_folder: "{images}/" '
                     f"{resize}batch_size: {BATCH} shuffle: false }}")
            kind = "ImageData"
            disk = sum(disk_bytes(images / f"{p.rsplit(' ', 1)[0]}")
                       for p in (work / f"{listing}.txt").read_text().splitlines())
        else:
            backend, folder = mode.split("-")[0], work / "data" / mode
            param = (f'data_param {{ source: "{folder / backend}" backend: {backend.upper()} '
                     f"batch_size: {BATCH} }}")
            kind, disk = "Data", disk_bytes(folder / backend)
        net = work / f"{mode}.prototxt"
        mode_mean = work / "data" / mode / "mean.binaryproto" if mode in DB_MODES else mean  # each DB its own
        net.write_text(DATA.format(type=kind, crop=CROP, mean=mode_mean, param=param))
        out[mode] = (net, disk / n)
    return out


def worker(prototxt: str, batches: int) -> None:
    """In its own process: forward the data-only net, print img/s of the timed batches and the last one's hash."""
    from xfer import caffeenv
    caffe = caffeenv.import_caffe()  # XFER_CAFFE_PREFIX's pycaffe when set, as its tools build the databases
    caffe.set_mode_cpu()
    caffe.set_random_seed(1)
    net = caffe.Net(prototxt, caffe.TRAIN)
    for _ in range(WARMUP):
        net.forward()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        net.forward()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    digest = hashlib.sha256(net.blobs["data"].data.tobytes() + net.blobs["label"].data.tobytes()).hexdigest()
    # CPU of all the process' threads: cores = cpu / elapsed says how much of the machine the layer got.
    print(json.dumps({"img_s": batches * BATCH / elapsed, "cores": cpu / elapsed,
                      "cpu_ms_per_img": 1000 * cpu / (batches * BATCH), "sha256": digest}))


def start(prototxt: Path, threads: int, batches: int) -> subprocess.Popen:
    # OPENBLAS_NUM_THREADS=1: a data-only net does no BLAS, and the idle pools of numpy's and scipy's OpenBLAS
    # would otherwise wake on the cores the layer's threads are measured on.
    env = dict(os.environ, CAFFE_DATA_THREADS=str(threads), OPENBLAS_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, __file__, "--worker", str(prototxt), str(batches)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen, what: str) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"bench_datalayer: {what} failed:\n{err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


def measure(prototxt: Path, threads: int, batches: int) -> dict:
    return finish(start(prototxt, threads, batches), f"{prototxt.stem} at {threads} threads")


def reader_copy(net: Path, k: int) -> Path:
    """Reader k's net for processes side by side: the net itself for k = 0 and wherever several processes may read
    one database; for LevelDB (one process at a time) a net on a copy of the dataset folder, made once."""
    text = net.read_text()
    if k == 0 or "backend: LEVELDB" not in text:
        return net
    folder = Path(re.search(r'source: "([^"]+)"', text).group(1)).parent
    copy = folder.with_name(f"{folder.name}.reader{k}")
    if not copy.exists():
        shutil.copytree(folder, copy.with_name(copy.name + ".part"))
        copy.with_name(copy.name + ".part").rename(copy)
    copied = net.with_name(f"{net.stem}.reader{k}.prototxt")
    copied.write_text(text.replace(f"{folder}/", f"{copy}/"))
    return copied


def side_by_side(net: Path, procs: int, batches: int) -> dict:
    """procs one-thread processes at once: what the machine gives that many separate upstream layers (their cores
    share memory and caches), the ceiling procs threads of one layer can reach. img/s summed, CPU per image of all."""
    runs = [start(reader_copy(net, k), 1, batches) for k in range(procs)]
    rows = [finish(p, f"{net.stem}: {procs} one-thread processes side by side") for p in runs]
    return {"img_s": sum(r["img_s"] for r in rows), "cores": sum(r["cores"] for r in rows),
            "cpu_ms_per_img": sum(r["cpu_ms_per_img"] for r in rows) / procs}


def threads_for(img_s: float, cpu_ms_per_img: float) -> int:
    """Cores one net's pool needs for img_s: from the CPU an image costs, which other load hardly changes (the wall
    rate on a shared machine says more about the other jobs than about the layer)."""
    return max(1, math.ceil(img_s * cpu_ms_per_img / 1000))


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def report(results: dict, disk: dict, threads: list) -> None:
    top = threads[-1]
    head = " | ".join(f"{t} thr img/s (cores)" for t in threads)
    print(f"\n| mode | disk/image | {head} | {top} thr / 1 thr | {top} one-thread processes side by side / 1 thr "
          f"| CPU ms/img at 1 / {top} thr | threads for {H100_IMG_S:,} img/s | for {NODE_GPUS} nets "
          f"| load at start/end |")
    print("|---" * (len(threads) + 8) + "|")
    for mode, rows in results.items():
        best = {t: max(rows[t], key=lambda r: r["img_s"]) for t in threads}
        ratio = best[top]["img_s"] / best[1]["img_s"]
        apart = max(rows["apart"], key=lambda r: r["img_s"])
        # CPU per image at the highest count measured: includes what the pool costs beyond one thread.
        need = threads_for(H100_IMG_S, best[top]["cpu_ms_per_img"])
        cells = " | ".join(f"{best[t]['img_s']:,.0f} ({best[t]['cores']:.2f})" for t in threads)
        cpu = f"{best[1]['cpu_ms_per_img']:.2f} / {best[top]['cpu_ms_per_img']:.2f}"
        print(f"| {mode} | {disk[mode] / 1000:.1f} kB | {cells} | {ratio:.2f}x "
              f"| {apart['img_s']:,.0f} ({apart['cores']:.2f}): {apart['img_s'] / best[1]['img_s']:.2f}x | {cpu} "
              f"| {need} | {NODE_GPUS * need} | {rows['load'][0]} → {rows['load'][-1]} |")
    print(f"\ncores: CPU seconds of the process per wall second; below the thread count, the machine did not give "
          f"the threads their cores (other load), and the ratio says little. Side by side: {top} separate Caffe "
          f"processes at one thread each (upstream's loop), img/s summed: what this machine's cores give when they "
          f"share its memory and caches, the ceiling of {top} threads of one layer. threads for {H100_IMG_S:,} "
          f"img/s = img/s x CPU per image at {top} threads, in cores like this machine's, each net's pool its own "
          f"(its prefetch thread is one of them).")


def bench_mode(mode: str, net: Path, threads: list, args) -> dict:
    """Rounds of every thread count, then the processes side by side, one after another (the same machine for
    each); the last batch must be the same at every thread count."""
    rows = {t: [] for t in threads}
    rows["apart"], rows["load"] = [], [load()]
    for _ in range(args.rounds):
        for t in threads:
            rows[t].append(measure(net, t, args.batches))
            r = rows[t][-1]
            print(f"  {mode:15s} {t} thread(s): {r['img_s']:8,.0f} img/s on {r['cores']:.2f} cores, "
                  f"{r['cpu_ms_per_img']:.2f} ms CPU per image  (load {load()})", flush=True)
        rows["apart"].append(side_by_side(net, threads[-1], args.batches))
        r = rows["apart"][-1]
        print(f"  {mode:15s} {threads[-1]} processes of 1 thread side by side: {r['img_s']:8,.0f} img/s on "
              f"{r['cores']:.2f} cores", flush=True)
    rows["load"].append(load())
    digests = {r["sha256"] for t in threads for r in rows[t]}
    if len(digests) != 1:
        sys.exit(f"bench_datalayer: {mode}: the last batch differs between thread counts")
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]))
        return
    cores = os.cpu_count() or 1
    default_threads = ",".join(str(2 ** k) for k in range(4) if 2 ** k <= max(2, min(cores, 8)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=512, help="distinct images (the layers cycle through them)")
    ap.add_argument("--batches", type=int, default=4, help="timed batches of 256 per measurement")
    ap.add_argument("--rounds", type=int, default=1, help="measurements per (mode, threads); the best is reported")
    ap.add_argument("--threads", default=default_threads, help=f"thread counts (default {default_threads})")
    ap.add_argument("--modes", default=",".join(MODES), help=f"subset of {','.join(MODES)}")
    ap.add_argument("--dir", type=Path, help="keep images and databases here (reused by the next run)")
    args = ap.parse_args()
    threads = sorted({int(t) for t in args.threads.split(",")} | {1})
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        sys.exit(f"bench_datalayer: unknown --modes {sorted(unknown)}; choose from {','.join(MODES)}")
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench_datalayer."))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"[bench_datalayer] {args.images} images of {SIZE}x{SIZE} in {work}; load {load()}", flush=True)
        t0 = time.perf_counter()
        nets = prepare(work, args.images)
        print(f"[bench_datalayer] images and databases ready in {time.perf_counter() - t0:.1f} s", flush=True)
        results, disk = {}, {}
        for mode in modes:
            net, disk[mode] = nets[mode]
            results[mode] = bench_mode(mode, net, threads, args)
        report(results, disk, threads)
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
