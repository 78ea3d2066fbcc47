"""What Caffe's tools put in a database, and the kit's readers and writers for LMDB and LevelDB.

- keys: convert_imageset writes `caffe::format_int(line_id, 8) + "_" + path`, line_id being the line's index in
  the list it was given (a line whose image cannot be read is skipped, leaving a gap in the numbers);
- values: a serialized Datum (channels, height, width, data = CHW bytes in OpenCV's BGR order, label, encoded);
- means: compute_image_mean sums every record's bytes into a float BlobProto in key order and divides by the count.
"""
import ctypes
import ctypes.util
import os
import shutil
import threading
from pathlib import Path

import lmdb
import numpy as np

from ..caffeenv import caffe_pb2
from ..errors import XferError

BACKENDS = ("lmdb", "leveldb")
COMMIT_EVERY = 1000           # records per transaction / write batch (convert_imageset commits every 1000 too)
LMDB_PAGE = 4096
LEVELDB_OPTIONS = dict(block_size=65536, write_buffer_size=268435456, max_open_files=100)  # Caffe's db_leveldb.cpp


def make_key(line_id: int, image: str) -> bytes:
    return b"%08d_" % line_id + image.encode("utf-8")


def key_line_id(key: bytes) -> int:
    return int(key[:key.index(b"_")])


def read_varint(buf, pos):
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def parse_datum(buf) -> dict:
    """The fields of a serialized Datum that the kit needs, without copying the pixel bytes."""
    view, pos, fields = memoryview(buf), 0, {"channels": 0, "height": 0, "width": 0, "label": 0, "encoded": False}
    names = {1: "channels", 2: "height", 3: "width", 5: "label", 7: "encoded"}
    while pos < len(view):
        tag, pos = read_varint(view, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = read_varint(view, pos)
            if number in names:
                fields[names[number]] = bool(value) if number == 7 else value
        elif wire == 2:
            length, pos = read_varint(view, pos)
            if number == 4:
                fields["data"] = view[pos:pos + length]
            pos += length
        elif wire == 5:
            pos += 4
        elif wire == 1:
            pos += 8
        else:
            raise ValueError(f"unexpected protobuf wire type {wire} in a Datum")
    return fields


class MeanAccumulator:
    """compute_image_mean's arithmetic: a float32 running sum per byte, in record order, then / count.

    Fed the records in key order, the result is bit-identical to compute_image_mean's on the same database.
    """

    def __init__(self):
        self.sum, self.shape, self.count = None, None, 0

    def add(self, value: bytes) -> None:
        datum = parse_datum(value)
        if datum["encoded"]:  # compute_image_mean decodes an encoded record (DecodeDatumNative) and sums its pixels
            pixels = decode_image(datum["data"])
            shape, pixels = pixels.shape, pixels.ravel()
        else:
            shape = (datum["channels"], datum["height"], datum["width"])
            pixels = np.frombuffer(datum["data"], dtype=np.uint8)
        if self.sum is None:
            self.sum, self.shape = np.zeros(pixels.size, dtype=np.float32), shape
        elif shape != self.shape:
            raise XferError(f"images of different sizes ({self.shape} and {shape}) cannot share a mean",
                            fix="pass --resize N (e.g. 256) so that every record has the same size")
        np.add(self.sum, pixels, out=self.sum)
        self.count += 1

    def snapshot(self):
        return (None if self.sum is None else self.sum.copy(), self.shape, self.count)

    def restore(self, saved) -> None:
        self.sum, self.shape, self.count = saved

    def blob(self):
        """The mean as a BlobProto (num=1, channels, height, width, data), as compute_image_mean writes it."""
        return mean_blob(self.sum / np.float32(self.count), self.shape)


def decode_image(data) -> np.ndarray:
    """An encoded record's image (JPEG/PNG bytes) as Caffe's CHW uint8 pixels: BGR, or 1 x H x W when gray.

    As DecodeDatumNative does (cv::imdecode, IMREAD_ANYCOLOR): the file's own channels. Pillow and this OpenCV both
    decode with libjpeg-turbo's defaults (islow DCT, fancy upsampling), so the pixels are the same; the tests check
    the mean against compute_image_mean's and the pixels against a Data layer's, byte for byte.
    """
    import io
    from PIL import Image  # lazy for start-up: only encoded records need it
    with Image.open(io.BytesIO(bytes(data))) as img:
        if img.mode not in ("L", "RGB"):
            raise XferError(f"an encoded record holds a {img.mode} image, not gray or RGB",
                            fix="rebuild the database with --resize N: convert_imageset then re-encodes every image")
        pixels = np.asarray(img)
    return pixels[np.newaxis] if pixels.ndim == 2 else np.ascontiguousarray(pixels[:, :, ::-1].transpose(2, 0, 1))


def mean_blob(mean, shape):
    blob = caffe_pb2().BlobProto()
    blob.num, (blob.channels, blob.height, blob.width) = 1, shape
    blob.data.extend(np.asarray(mean, dtype=np.float32).ravel().tolist())
    return blob


def read_mean(path) -> np.ndarray:
    """A mean.binaryproto as a float32 array (channels, height, width)."""
    blob = caffe_pb2().BlobProto()
    blob.ParseFromString(Path(path).read_bytes())
    return np.array(blob.data, dtype=np.float32).reshape(blob.channels, blob.height, blob.width)


class MapGrown(Exception):
    """The LMDB map was full and has been grown: the records since the last commit must be put again."""


def libc_function(name, argtypes):
    """A libc function by name with its argument types, or None where this libc lacks it (a non-Linux system)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    function.argtypes = argtypes
    return function


SYNC_FILE_RANGE_WRITE = 2
# sync_file_range: start writeback of a file's dirty pages without waiting.
SYNC_RANGE = libc_function("sync_file_range", [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint])


class Flusher:
    """Starts writing a file's dirty pages to disk after each commit (sync_file_range, which neither waits for the
    disk nor forces a journal commit), so the disk works while the CPU converts; the final fsync at close then only
    waits for the last pages. convert_imageset instead blocks on an fsync at every commit."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDONLY)
        self.wanted, self.done = threading.Event(), False
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def kick(self) -> None:
        self.wanted.set()

    def loop(self) -> None:
        while True:
            self.wanted.wait()
            self.wanted.clear()
            if self.done:
                return
            if SYNC_RANGE is not None:
                SYNC_RANGE(self.fd, 0, 0, SYNC_FILE_RANGE_WRITE)

    def stop(self) -> None:
        self.done = True
        self.wanted.set()
        self.thread.join()
        os.close(self.fd)


FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
P_OVERFLOW = 0x04


FALLOCATE = libc_function("fallocate", [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64])


class PageReleaser:
    """Frees the pages of LMDB values that have been copied elsewhere (punches holes in the data file).

    Why: in this VM, memory that has not been used lately costs ~2.4 s of CPU per GB at its first touch (the host
    backs it on demand), memory freed a moment ago ~0.6 s per GB. Shard records freed right after the merge copied
    them are the pages the output database and the converting processes take next, instead of fresh ones.
    Only values in overflow pages (LMDB gives a big value pages of its own: a 16-byte header with its first page
    number, the overflow flag and the page count) are freed; leaf and branch pages, shared by keys, are never touched.
    The values freed must never be read again: the data file is left with holes (it is temporary).
    """

    def __init__(self, path, page_size):
        self.path, self.page_size, self.fd, self.base, self.ranges = path, page_size, None, None, []

    def spend(self, value) -> None:
        """Note the pages of a value (a buffer into the map) whose bytes have been copied."""
        if FALLOCATE is None or len(value) < self.page_size:
            return
        address = np.frombuffer(value, dtype=np.uint8).ctypes.data
        header = ctypes.string_at(address - 16, 16)
        pgno, flags, pages = (int.from_bytes(header[:8], "little"), int.from_bytes(header[10:12], "little"),
                              int.from_bytes(header[12:16], "little"))
        start, base = pgno * self.page_size, address - 16 - pgno * self.page_size
        if not flags & P_OVERFLOW or base % self.page_size or base != (self.base or base):
            return  # not the start of an overflow page run in this map: leave it
        self.base = base
        if self.ranges and self.ranges[-1][1] == start:
            self.ranges[-1][1] = start + pages * self.page_size  # contiguous with the last: one hole
        else:
            self.ranges.append([start, start + pages * self.page_size])

    def forget(self) -> None:
        self.ranges = []

    def release(self) -> None:
        """Free the pages noted since the last call (their values are committed elsewhere by now)."""
        if self.ranges and self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR)
        for start, stop in self.ranges:
            FALLOCATE(self.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, start, stop - start)
        self.ranges = []

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class LmdbWriter:
    """Appends records in key order (MDB_APPEND) to a new LMDB; synced once at the end, not at every commit.

    The map is sized from an estimate (the data file is sparse while written, and cut to what is used at the end);
    if it still fills up, it grows and put()/commit() raise MapGrown so the caller redoes the uncommitted records.
    """

    def __init__(self, path, map_size):
        Path(path).mkdir(parents=True)
        self.path, self.map_size, self.txn = Path(path), max(int(map_size), 1 << 20), None
        self.env = lmdb.open(str(path), map_size=self.map_size, writemap=True, sync=False, metasync=False,
                             meminit=False, max_dbs=0)
        self.flusher = Flusher(self.path / "data.mdb")

    def put(self, key, value) -> None:
        if self.txn is None:
            self.txn = self.env.begin(write=True)
        try:
            self.txn.put(key, value, append=True)
        except lmdb.MapFullError:
            self.txn.abort()
            self.grow()

    def commit(self) -> None:
        if self.txn is not None:
            txn, self.txn = self.txn, None
            try:
                txn.commit()
            except lmdb.MapFullError:
                self.grow()
            self.flusher.kick()

    def grow(self):
        self.txn = None
        self.map_size *= 2
        self.env.set_mapsize(self.map_size)
        raise MapGrown()

    def close(self) -> None:
        self.commit()
        self.flusher.stop()
        used = (self.env.info()["last_pgno"] + 1) * self.env.stat()["psize"]
        self.env.sync(True)
        self.env.close()
        os.truncate(self.path / "data.mdb", used)  # readers map what the meta page says; the tail was never used


class LevelDBWriter:
    """A new LevelDB with Caffe's options; one write batch per commit."""

    def __init__(self, path, map_size=None):
        import plyvel  # lazy for start-up: only LevelDB output needs it
        self.db = plyvel.DB(str(path), create_if_missing=True, error_if_exists=True, **LEVELDB_OPTIONS)
        self.batch = None

    def put(self, key, value) -> None:
        if self.batch is None:
            self.batch = self.db.write_batch()
        self.batch.put(key, bytes(value))

    def commit(self) -> None:
        if self.batch is not None:
            self.batch.write()
            self.batch = None

    def close(self) -> None:
        self.commit()
        self.db.close()


def open_writer(backend, path, map_size):
    return {"lmdb": LmdbWriter, "leveldb": LevelDBWriter}[backend](path, map_size)


def iterate(backend, path, values=True):
    """(key, value) pairs (or keys alone) of a database in key order."""
    if backend == "lmdb":
        env = lmdb.open(str(path), readonly=True, lock=False, subdir=True)
        try:
            with env.begin() as txn:
                for key, value in txn.cursor():
                    yield (key, value) if values else key
        finally:
            env.close()
    else:
        import plyvel  # lazy for start-up, as in LevelDBWriter
        db = plyvel.DB(str(path), create_if_missing=False)
        try:
            for item in db.iterator(include_value=values):
                yield item
        finally:
            db.close()


def remove_db(path) -> None:
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def record_bytes(channels, height, width, label=999) -> int:
    """Size of one serialized Datum of raw pixels: tags, varints, the pixels, the label, `encoded: false`."""
    n = channels * height * width
    fields = (channels, height, width, n, label)
    return sum(1 + len(_varint(v)) for v in fields) + n + 2


def disk_per_record(backend, value_bytes, key_bytes=40) -> int:
    """Disk one record takes: LMDB puts a value bigger than a page in its own pages (plus a leaf node)."""
    if backend == "lmdb":
        if value_bytes + key_bytes > LMDB_PAGE // 2:
            return -(-(value_bytes + 16) // LMDB_PAGE) * LMDB_PAGE + key_bytes + 16
        return int((value_bytes + key_bytes + 16) * 1.5)  # leaf pages are 2/3 full on average
    return int((value_bytes + key_bytes) * 1.05)


def _varint(n):
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)
