"""Weight surgery and verify on real pycaffe: a mini base trained by real Caffe, copied into transfer nets."""
import json

import numpy as np
import pytest

from xfer.nets import registry
from xfer.run import surgery, train
from xfer.errors import XferError

pytestmark = pytest.mark.caffe

NETS = ("half0A", "transfer0A0B_1_3", "transfer-ft0A0B_1_2", "nolearn_1_2")


@pytest.fixture(scope="module")
def tree(tmp_path_factory, tiny_render):
    """Rendered nets with half0A trained to its final snapshot (real `caffe train`)."""
    out = tiny_render(tmp_path_factory.mktemp("surgery") / "results", NETS)
    assert train.train(registry.get("half0A", "mini"), out, cpu=True, quiet=True, poll=0.2) == 0
    return out


def mini(name):
    return registry.get(name, "mini")


def base_model(tree):
    return tree / "half0A" / "caffe_imagenet_train_iter_24.caffemodel"


def test_frozen_transfer_copies_exactly_layers_1_to_n(tree):
    net = mini("transfer0A0B_1_3")
    manifest = surgery.surgery(tree / net.name, net=net)
    init = surgery.read_blobs(tree / net.name / "init.caffemodel")
    base = surgery.read_blobs(base_model(tree))
    for layer in ("conv1", "conv2", "conv3"):
        assert [a.tobytes() for a in init[layer]] == [b.tobytes() for b in base[layer]]
        assert manifest["layers"][layer]["policy"] == "frozen"
        assert manifest["layers"][layer]["sha256"] == [surgery.sha256_blob(b) for b in base[layer]]
        assert manifest["layers"][layer]["source"] == str(base_model(tree).resolve())
    for layer in ("conv4", "conv5", "fc6", "fc7", "fc8"):
        assert layer not in init, f"{layer} must be renamed {layer}-new in a transfer at n=3"
        fresh = init[f"{layer}-new"]
        assert manifest["layers"][f"{layer}-new"]["source"] == "filler"
        assert not np.array_equal(fresh[0], base[layer][0])  # a new initialisation, not the base's weights
        spec = net.spec().layers[registry.LAYERS.index(layer)]
        assert np.all(fresh[1] == np.float32(spec.bias))  # the constant bias filler of the template
        assert fresh[0].std() > 0
    written = json.loads((tree / net.name / "init.manifest.json").read_text())
    assert written["base_sha256"] == surgery.sha256_file(base_model(tree))


def test_finetune_transfer_copies_tuned_layers(tree):
    net = mini("transfer-ft0A0B_1_2")
    out = tree / net.name / "ft_init.caffemodel"
    manifest = surgery.surgery(tree / net.name, net=net, base_file=base_model(tree), out=out)
    init, base = surgery.read_blobs(out), surgery.read_blobs(base_model(tree))
    assert [manifest["layers"][k]["policy"] for k in ("conv1", "conv2", "conv3-new")] == ["tuned", "tuned", "fresh"]
    assert init["conv2"][0].tobytes() == base["conv2"][0].tobytes()
    assert (tree / net.name / "ft_init.manifest.json").is_file()


def test_nolearn_records_its_random_frozen_layers(tree):
    net = mini("nolearn_1_2")
    manifest = surgery.surgery(tree / net.name, net=net)
    init = surgery.read_blobs(tree / net.name / "init.caffemodel")
    assert manifest["base"] is None
    assert manifest["layers"]["conv1"]["policy"] == "random-frozen"
    assert manifest["layers"]["conv2"]["sha256"] == [surgery.sha256_blob(b) for b in init["conv2"]]
    assert "sha256" not in manifest["layers"]["conv3"]


def test_surgery_refuses_to_overwrite_and_base_nets(tree):
    net = mini("transfer0A0B_1_3")
    existing = tree / "existing.caffemodel"
    existing.write_bytes(b"finished work")
    with pytest.raises(XferError, match="--force"):
        surgery.surgery(tree / net.name, net=net, out=existing)
    assert existing.read_bytes() == b"finished work"
    with pytest.raises(XferError, match="trains from its fillers"):
        surgery.surgery(tree / "half0A", net=mini("half0A"))


def test_surgery_names_a_shape_mismatch(tree, caffe):
    pb2 = caffe.proto.caffe_pb2
    param = pb2.NetParameter()
    param.ParseFromString(base_model(tree).read_bytes())
    conv2 = next(layer for layer in param.layer if layer.name == "conv2")
    del conv2.blobs[0].shape.dim[:]
    conv2.blobs[0].shape.dim.extend([16, 16, 5, 5])  # same element count (32x8x5x5), other shape
    bad = tree / "bad_base.caffemodel"
    bad.write_bytes(param.SerializeToString())
    net = mini("transfer0A0B_1_3")
    with pytest.raises(XferError, match=r"shape mismatch in conv2") as err:
        surgery.surgery(tree / net.name, net=net, base_file=bad, out=tree / "x.caffemodel")
    assert str(bad) in str(err.value)
    assert not (tree / "x.caffemodel").exists()


def test_surgery_names_a_missing_base_and_layer(tree, caffe):
    net = mini("transfer0A0B_1_3")
    with pytest.raises(XferError, match="weights file not found"):
        surgery.surgery(tree / net.name, net=net, base_file=tree / "nope.caffemodel", out=tree / "y.caffemodel")
    param = caffe.proto.caffe_pb2.NetParameter()
    param.ParseFromString(base_model(tree).read_bytes())
    for layer in param.layer:
        if layer.name == "conv3":
            layer.name = "conv3-renamed"
    lacking = tree / "lacking.caffemodel"
    lacking.write_bytes(param.SerializeToString())
    with pytest.raises(XferError, match="no layer 'conv3'"):
        surgery.surgery(tree / net.name, net=net, base_file=lacking, out=tree / "y.caffemodel")


def test_verify_passes_then_fails_after_tampering(tree, caffe):
    net = mini("transfer0A0B_1_3")
    assert train.train(net, tree, cpu=True, quiet=True, poll=0.2) == 0
    status = json.loads((tree / net.name / "xfer_status.json").read_text())
    assert status["state"] == "finished" and status["verify"]["ok"] is True
    assert set(status["verify"]["layers"]) == {"conv1", "conv2", "conv3"}
    snapshot_blobs = surgery.read_blobs(tree / net.name / "caffe_imagenet_train_iter_24.caffemodel")
    init = surgery.read_blobs(tree / net.name / "init.caffemodel")
    assert not np.array_equal(snapshot_blobs["fc8-new"][0], init["fc8-new"][0])  # trained layers did move

    snapshot = tree / net.name / "caffe_imagenet_train_iter_24.caffemodel"
    param = caffe.proto.caffe_pb2.NetParameter()
    param.ParseFromString(snapshot.read_bytes())
    conv2 = next(layer for layer in param.layer if layer.name == "conv2")
    conv2.blobs[0].data[7] = np.nextafter(np.float32(conv2.blobs[0].data[7]), np.float32(1))  # one ulp
    snapshot.write_bytes(param.SerializeToString())
    report = surgery.verify(net, tree)
    assert not report["ok"]
    by_layer = {row["layer"]: row for row in report["layers"]}
    assert by_layer["conv2"]["differing"] == 1
    assert by_layer["conv1"]["ok"] and by_layer["conv3"]["ok"]

