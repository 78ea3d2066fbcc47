"""Databases and means on real Caffe: the parallel writer against convert_imageset / compute_image_mean, record by
record and byte by byte; skipping, rebuilding, bad images, LevelDB, grayscale, and the shared-images mode read by a
real ImageData layer."""
import json

import numpy as np
import pytest
from PIL import Image

from xfer import cli
from xfer.data import databases, dbformat, lists, writers
from xfer.errors import XferError

pytestmark = pytest.mark.caffe

RESIZE = 16


def records(backend, path):
    return [(bytes(k), bytes(v)) for k, v in dbformat.iterate(backend, path)]


def make_images(root, classes, per_class, rng, gray=False):
    for c in range(classes):
        (root / f"k{c}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            if gray:
                Image.fromarray(rng.randint(0, 256, (28, 28), dtype=np.uint8)).save(root / f"k{c}" / f"{i}.png")
            else:
                size = (30 + 7 * i, 24 + 5 * c)
                pixels = rng.randint(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / f"k{c}" / f"{i}.jpg", quality=85)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """4 classes of JPEGs of different sizes: 5 per class for training, 2 for validation."""
    root = tmp_path_factory.mktemp("src")
    rng = np.random.RandomState(3)
    make_images(root / "train", 4, 5, rng)
    make_images(root / "val", 4, 2, rng)
    return root


@pytest.fixture
def data_dir(source, tmp_path):
    lists.write_whole_lists_from_folders(source / "train", source / "val", tmp_path / "data")
    return tmp_path / "data"


def entries_of(data_dir, dataset="whole_train"):
    return [tuple(line.rsplit(" ", 1)) for line in (data_dir / dataset / "files.txt").read_text().splitlines()]


@pytest.mark.parametrize("backend", ["lmdb", "leveldb"])
def test_parallel_writer_equals_convert_imageset(source, data_dir, tmp_path, backend):
    entries = [(p, int(c)) for p, c in entries_of(data_dir)]
    options = writers.Options(RESIZE)
    caffe = writers.write_caffe(entries, source / "train", tmp_path / "caffe", backend, options, tmp_path)
    # blocks of 7 lines on 2 processes: keys of each shard are renumbered into the whole list's
    parallel = writers.write_parallel_db(entries, source / "train", tmp_path / "par", backend, options, 2, tmp_path,
                                          map_size=1 << 24, block=7)
    ours, theirs = records(backend, tmp_path / "par"), records(backend, tmp_path / "caffe")
    assert len(ours) == 20 and ours == theirs
    assert ours[7][0] == b"00000007_" + entries[7][0].encode()
    assert parallel.mean_blob.SerializeToString() == caffe.mean_blob.SerializeToString()
    datum = dbformat.parse_datum(ours[0][1])
    assert (datum["channels"], datum["height"], datum["width"], datum["label"]) == (3, RESIZE, RESIZE, entries[0][1])


def test_output_map_that_fills_up_grows_and_loses_nothing(source, data_dir, tmp_path):
    entries = [(p, int(c)) for p, c in entries_of(data_dir)]
    options = writers.Options(128)  # 49 kB records: 20 of them overflow a 1 MB map several times
    first = writers.write_parallel_db(entries, source / "train", tmp_path / "a", "lmdb", options, 2, tmp_path,
                                       map_size=1, block=7)
    second = writers.write_parallel_db(entries, source / "train", tmp_path / "b", "lmdb", options, 2, tmp_path,
                                        map_size=1 << 30)
    assert records("lmdb", tmp_path / "a") == records("lmdb", tmp_path / "b") and first.count == 20
    assert first.mean_blob.SerializeToString() == second.mean_blob.SerializeToString()
    assert (tmp_path / "b" / "data.mdb").stat().st_size < 2 * 20 * 49152 + (1 << 20)  # cut to what is used


def test_parse_datum_agrees_with_protobuf(caffe):
    datum = caffe.proto.caffe_pb2.Datum(channels=2, height=3, width=1, data=bytes(range(6)), label=300, encoded=False)
    parsed = dbformat.parse_datum(datum.SerializeToString())
    assert bytes(parsed["data"]) == bytes(range(6)) and parsed["label"] == 300 and parsed["encoded"] is False
    assert dbformat.record_bytes(2, 3, 1, label=300) == len(datum.SerializeToString())


def test_gray_images_kept_at_their_size(tmp_path):
    make_images(tmp_path / "train", 2, 3, np.random.RandomState(5), gray=True)
    data = tmp_path / "data"
    lists.write_whole_lists_from_folders(tmp_path / "train", None, data)
    entries = [(p, int(c)) for p, c in entries_of(data)]
    options = writers.Options(resize=0, gray=True)
    caffe = writers.write_caffe(entries, tmp_path / "train", tmp_path / "caffe", "lmdb", options, tmp_path)
    databases.build_databases(data, None, ["whole_train"], resize=0, gray=True, jobs=2)
    ours = records("lmdb", data / "whole_train" / "lmdb")
    theirs = records("lmdb", tmp_path / "caffe")
    # the kit shuffles; compare record by record through the path in the key
    assert sorted(v for _, v in ours) == sorted(v for _, v in theirs)
    datum = dbformat.parse_datum(ours[0][1])
    assert (datum["channels"], datum["height"], datum["width"]) == (1, 28, 28)
    mean = dbformat.read_mean(data / "whole_train" / "mean.binaryproto")
    caffe_mean = np.array(caffe.mean_blob.data, dtype=np.float32).reshape(1, 28, 28)
    assert mean.shape == (1, 28, 28) and np.array_equal(mean, caffe_mean)


def test_build_skip_rebuild_and_force(data_dir, capsys):
    built = databases.build_databases(data_dir, None, ["whole_*"], resize=RESIZE, jobs=2)
    assert [r["count"] for r in built] == [20, 8] and all(r["complete"] for r in built)
    folder = data_dir / "whole_train"
    order = [line.rsplit(" ", 1)[0] for line in (folder / "db_list.txt").read_text().splitlines()]
    keys = [k for k, _ in records("lmdb", folder / "lmdb")]
    assert keys == [b"%08d_%s" % (i, p.encode()) for i, p in enumerate(order)]
    assert order != sorted(order)  # shuffled by the kit, with its fixed seed
    assert "need about" in capsys.readouterr().out
    # complete and built from the same list: skipped
    stamp = (folder / "db.json").stat().st_mtime_ns
    databases.build_databases(data_dir, None, ["whole_train"], resize=RESIZE)
    assert (folder / "db.json").stat().st_mtime_ns == stamp and "up to date: whole_train" in capsys.readouterr().out
    # a database left half way (no complete record) is rebuilt, not used
    (folder / "db.json").write_text(json.dumps(dict(json.loads((folder / "db.json").read_text()), complete=False)))
    databases.build_databases(data_dir, None, ["whole_train"], resize=RESIZE)
    assert json.loads((folder / "db.json").read_text())["complete"]
    assert [k for k, _ in records("lmdb", folder / "lmdb")] == keys
    # another list: finished work is only replaced with --force
    lines = (folder / "files.txt").read_text().splitlines()
    (folder / "files.txt").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(XferError, match="another list or settings"):
        databases.build_databases(data_dir, None, ["whole_train"], resize=RESIZE)
    assert databases.build_databases(data_dir, None, ["whole_train"], resize=RESIZE, force=True)[0]["count"] == 19


def test_bad_images_fail_or_are_skipped(source, data_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for image, _ in entries_of(data_dir):
        (broken / image).parent.mkdir(exist_ok=True)
        (broken / image).write_bytes((source / "train" / image).read_bytes())
    (broken / "k1" / "2.jpg").write_bytes(b"not a jpeg at all")
    (broken / "k3" / "0.jpg").unlink()
    images = {"train": str(broken), "valid": str(source / "val")}
    with pytest.raises(XferError, match="1 image\\(s\\) missing or unreadable"):  # the missing one, before converting
        databases.build_databases(data_dir, images, ["whole_train"], resize=RESIZE)
    assert "k3/0.jpg\tmissing" in (data_dir / "whole_train" / "bad_images.txt").read_text()
    (broken / "k3" / "0.jpg").write_bytes((source / "train" / "k3" / "0.jpg").read_bytes())
    with pytest.raises(XferError, match="1 image\\(s\\) missing or unreadable, e.g. k1/2.jpg \\(unreadable"):
        databases.build_databases(data_dir, images, ["whole_train"], resize=RESIZE)
    assert not (data_dir / "whole_train" / "lmdb").exists()
    (broken / "k3" / "0.jpg").unlink()
    record = databases.build_databases(data_dir, images, ["whole_train"], resize=RESIZE, skip_bad=True)[0]
    assert (record["count"], record["bad"], record["entries"]) == (18, 2, 20)
    report = (data_dir / "whole_train" / "bad_images.txt").read_text().splitlines()[1:]
    assert sorted(line.split("\t")[1] for line in report) == ["k1/2.jpg", "k3/0.jpg"]
    # the gaps in the keys are where a single convert_imageset run leaves them
    order = [(p, int(c)) for p, c in (tuple(row.rsplit(" ", 1)) for row in
                                      (data_dir / "whole_train" / "db_list.txt").read_text().splitlines())]
    writers.write_caffe(order, broken, tmp_path / "caffe", "lmdb", writers.Options(RESIZE), tmp_path, mean=False)
    assert records("lmdb", data_dir / "whole_train" / "lmdb") == records("lmdb", tmp_path / "caffe")


def test_disk_shortage_is_refused_with_the_figure(tmp_path):
    with pytest.raises(XferError, match="need about 1000000000.00 GB"):
        databases.check_disk(tmp_path, 10 ** 18, "2 database(s)")


def test_cli_builds_with_caffe_writer(data_dir, capsys):
    assert cli.main(["db", "--data-dir", str(data_dir), "--resize", str(RESIZE), "--writer", "caffe",
                     "whole_valid"]) == 0
    assert "1 dataset(s) ready" in capsys.readouterr().out
    assert json.loads((data_dir / "whole_valid" / "db.json").read_text())["writer"] == "caffe"
    assert cli.main(["db", "--data-dir", str(data_dir), "no_such_set"]) == 2
    assert "choose among" in capsys.readouterr().err


IMAGE_NET = """
layer {{ name: "db" type: "Data" top: "a" top: "la" data_param {{ source: "{db}" backend: LMDB batch_size: {n} }} }}
layer {{ name: "img" type: "ImageData" top: "b" top: "lb"
  image_data_param {{ source: "{images}" root_folder: "{root}" batch_size: {n} shuffle: false }} }}
"""


def test_shared_images_read_by_imagedata_equal_the_database(caffe, data_dir, tmp_path):
    databases.build_databases(data_dir, None, ["whole_train"], resize=RESIZE, jobs=2)
    shared = tmp_path / "shared"
    shared.mkdir()
    for name in ("whole_train", "whole_valid"):
        (shared / name).mkdir()
        (shared / name / "files.txt").write_text((data_dir / name / "files.txt").read_text())
    (shared / "image_roots.json").write_text((data_dir / "image_roots.json").read_text())
    (shared / "half0A_train").mkdir()
    (shared / "half0A_train" / "files.txt").write_text("k1/0.jpg 0\nk1/1.jpg 0\nk2/4.jpg 1\n")
    built = databases.build_databases(shared, None, None, resize=RESIZE, jobs=2, shared_images=True)
    assert [r["count"] for r in built] == [3, 20, 8]
    assert len(list((shared / "_images" / "train").rglob("*.png"))) == 20  # shared, each image once
    record = json.loads((shared / "whole_train" / "db.json").read_text())
    net_path = tmp_path / "net.prototxt"
    net_path.write_text(IMAGE_NET.format(db=data_dir / "whole_train" / "lmdb", images=shared / "whole_train" /
                                         "images.txt", root=record["root_folder"], n=20))
    net = caffe.Net(str(net_path), caffe.TEST)
    net.forward()
    assert np.array_equal(net.blobs["a"].data, net.blobs["b"].data)
    assert np.array_equal(net.blobs["la"].data, net.blobs["lb"].data)
    assert np.array_equal(dbformat.read_mean(shared / "whole_train" / "mean.binaryproto"),
                          dbformat.read_mean(data_dir / "whole_train" / "mean.binaryproto"))
    assert databases.build_databases(shared, None, ["half0A_train"], resize=RESIZE, shared_images=True)[0]["count"] == 3
    with pytest.raises(XferError, match="another list or settings"):
        databases.build_databases(shared, None, ["whole_valid"], resize=RESIZE + 1, shared_images=True)
    (shared / "half0B_train").mkdir()
    (shared / "half0B_train" / "files.txt").write_text("k0/0.jpg 0\n")
    with pytest.raises(XferError, match="shared image tree was made with"):
        databases.build_databases(shared, None, ["half0B_train"], resize=RESIZE + 1, shared_images=True)
