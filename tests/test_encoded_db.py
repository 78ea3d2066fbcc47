"""`xfer db --encoded` on real Caffe: JPEG records equal convert_imageset's, the mean equals compute_image_mean's
(both decode), a Data layer reads them (labels, shapes, pixels), and raw and encoded builds never mix silently."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from xfer import cli
from xfer.data import databases, dbformat, lists, writers
from xfer.errors import XferError

pytestmark = pytest.mark.caffe

RESIZE = 24
NET = """
layer {{ name: "data" type: "Data" top: "data" top: "label"
  transform_param {{ crop_size: {crop} mean_file: "{mean}" }}
  data_param {{ source: "{db}" backend: {backend} batch_size: {n} }} }}
"""


def smooth_image(rng, size, gray):
    """A photograph-like image (smooth gradients and a few edges), so JPEG behaves as on real data."""
    y, x = np.mgrid[0:size[1], 0:size[0]] / max(size)
    channels = [np.clip(128 + 100 * np.sin(6 * x * rng.rand() + 4 * y * rng.rand() + rng.rand()), 0, 255)
                for _ in range(1 if gray else 3)]
    pixels = np.stack(channels, axis=-1).astype(np.uint8)
    return Image.fromarray(pixels[:, :, 0] if gray else pixels)


@pytest.fixture(scope="module", params=[False, True], ids=["color", "gray"])
def source(tmp_path_factory, request):
    root, rng = tmp_path_factory.mktemp("src"), np.random.RandomState(5)
    for part, per_class in (("train", 4), ("val", 2)):
        for c in range(3):
            (root / part / f"k{c}").mkdir(parents=True)
            for i in range(per_class):
                smooth_image(rng, (40 + 9 * i, 30 + 7 * c), False).save(root / part / f"k{c}" / f"{i}.jpg",
                                                                       quality=90)
    return root, request.param


@pytest.fixture
def data_dir(source, tmp_path):
    lists.write_whole_lists_from_folders(source[0] / "train", source[0] / "val", tmp_path / "data")
    return tmp_path / "data"


@pytest.mark.parametrize("backend", ["lmdb", "leveldb"])
def test_encoded_records_and_mean_equal_caffes_tools(source, data_dir, tmp_path, backend):
    root, gray = source
    built = databases.build_databases(data_dir, None, ["whole_train"], backend, RESIZE, gray, jobs=2, encoded=True)
    record = json.loads((data_dir / "whole_train" / "db.json").read_text())
    assert built[0] == record and record["count"] == 12
    assert (record["mode"], record["encode_type"], record["jpeg_quality"]) == ("encoded", "jpg", 95)
    ordered = [tuple(line.rsplit(" ", 1)) for line in (data_dir / "whole_train" / "db_list.txt").read_text().split(
        "\n") if line]
    options = writers.Options(RESIZE, gray, encode="jpg")
    theirs = writers.write_caffe([(p, int(c)) for p, c in ordered], root / "train", tmp_path / "caffe", backend,
                                 options, tmp_path)
    mine = [(bytes(k), bytes(v)) for k, v in dbformat.iterate(backend, data_dir / "whole_train" / backend)]
    assert mine == [(bytes(k), bytes(v)) for k, v in dbformat.iterate(backend, tmp_path / "caffe")]
    assert (data_dir / "whole_train" / "mean.binaryproto").read_bytes() == theirs.mean_blob.SerializeToString()
    jpeg = Image.open(io.BytesIO(bytes(dbformat.parse_datum(mine[0][1])["data"])))
    assert jpeg.format == "JPEG" and jpeg.size == (RESIZE, RESIZE) and jpeg.mode == ("L" if gray else "RGB")
    reference = io.BytesIO()
    jpeg.save(reference, "JPEG", quality=95)  # libjpeg's tables at quality 95: what db.json says was written
    assert jpeg.quantization == Image.open(reference).quantization


def test_a_data_layer_reads_the_encoded_database(caffe, source, data_dir, tmp_path):
    gray = source[1]
    databases.build_databases(data_dir, None, ["whole_train"], "lmdb", RESIZE, gray, jobs=2, encoded=True)
    folder, crop = data_dir / "whole_train", RESIZE - 4
    net_path = tmp_path / "net.prototxt"
    net_path.write_text(NET.format(crop=crop, mean=folder / "mean.binaryproto", db=folder / "lmdb", backend="LMDB",
                                   n=12))
    net = caffe.Net(str(net_path), caffe.TEST)
    net.forward()
    labels = [int(line.rsplit(" ", 1)[1]) for line in (folder / "db_list.txt").read_text().splitlines()]
    assert net.blobs["label"].data.tolist() == labels
    assert net.blobs["data"].data.shape == (12, 1 if gray else 3, crop, crop)
    mean = dbformat.read_mean(folder / "mean.binaryproto")
    assert mean.shape == (1 if gray else 3, RESIZE, RESIZE)
    decoded = np.stack([dbformat.decode_image(dbformat.parse_datum(v)["data"])
                        for _, v in dbformat.iterate("lmdb", folder / "lmdb")]).astype(np.float32)
    off = (RESIZE - crop) // 2  # TEST phase: the centre crop
    window = (slice(None), slice(None), slice(off, off + crop), slice(off, off + crop))
    assert np.array_equal(net.blobs["data"].data, (decoded - mean)[window])


def test_raw_and_encoded_builds_do_not_mix(source, data_dir):
    gray = source[1]
    databases.build_databases(data_dir, None, ["whole_valid"], resize=RESIZE, gray=gray, jobs=2)
    with pytest.raises(XferError, match="another list or settings"):
        databases.build_databases(data_dir, None, ["whole_valid"], resize=RESIZE, gray=gray, encoded=True)
    record = databases.build_databases(data_dir, None, ["whole_valid"], resize=RESIZE, gray=gray, encoded=True,
                                       force=True)[0]
    assert record["mode"] == "encoded" and dbformat.parse_datum(next(dbformat.iterate(
        "lmdb", data_dir / "whole_valid" / "lmdb"))[1])["encoded"]
    assert databases.build_databases(data_dir, None, ["whole_valid"], resize=RESIZE, gray=gray,
                                     encoded=True)[0]["built"] == record["built"]  # up to date: skipped
    with pytest.raises(XferError, match="another list or settings"):
        databases.build_databases(data_dir, None, ["whole_valid"], resize=RESIZE, gray=gray)
    path = data_dir / "whole_valid" / "db.json"
    path.write_text(json.dumps(dict(record, jpeg_quality=90)))  # as if an earlier build used another quality
    with pytest.raises(XferError, match="another list or settings"):
        databases.build_databases(data_dir, None, ["whole_valid"], resize=RESIZE, gray=gray, encoded=True)


def test_encoded_refuses_what_it_cannot_do(data_dir, capsys):
    with pytest.raises(XferError, match="needs --resize N"):
        databases.build_databases(data_dir, None, ["whole_valid"], resize=0, encoded=True)
    with pytest.raises(XferError, match="do not go together"):
        databases.build_databases(data_dir, None, ["whole_valid"], resize=RESIZE, encoded=True, shared_images=True)
    assert cli.main(["db", "--data-dir", str(data_dir), "--resize", str(RESIZE), "--encoded", "--writer", "caffe",
                     "whole_valid"]) == 0
    assert "1 dataset(s) ready" in capsys.readouterr().out
    record = json.loads((data_dir / "whole_valid" / "db.json").read_text())
    assert (record["writer"], record["mode"], record["count"]) == ("caffe", "encoded", 6)
