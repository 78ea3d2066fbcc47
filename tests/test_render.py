"""Rendering: results/ in sync with the templates, every file parses and instantiates in pycaffe, semantics equal
Caffe's own upgrade of the 2014-syntax nets, links, drift check, overrides, shared images, no deletions."""
import os
from pathlib import Path

import numpy as np
import pytest

from xfer import cli
from xfer.nets import check as render_check
from xfer.nets import registry, render
from xfer.errors import XferError
from xfer.paths import DATA_DIR, RESULTS_DIR, TEMPLATES_DIR

PAPER = registry.nets("paper")


@pytest.fixture(scope="module")
def pb2(caffe):
    return caffe.proto.caffe_pb2


@pytest.fixture(scope="module")
def parsed(pb2):
    """Parse each distinct text once (the 510 files hold ~35 distinct texts: sources are link names)."""
    cache = {}

    def parse(path, kind):
        text = Path(path).read_text()
        if (text, kind) not in cache:
            cache[(text, kind)] = render_check.parse(text, getattr(pb2, kind), path)
        return cache[(text, kind)]
    return parse


def test_results_tree_is_in_sync_with_the_registry_and_templates():
    assert render.drift(PAPER, RESULTS_DIR, DATA_DIR) == []
    assert render.unknown_folders(RESULTS_DIR, "paper") == []
    assert sorted(p.name for p in RESULTS_DIR.iterdir() if p.is_dir()) == sorted(n.name for n in PAPER)


@pytest.mark.caffe
def test_every_rendered_file_parses_and_is_its_registry_entry(parsed):
    for net in PAPER:
        folder = RESULTS_DIR / net.name
        train = parsed(folder / "imagenet_train.prototxt", "NetParameter")
        val = parsed(folder / "imagenet_val.prototxt", "NetParameter")
        solver = parsed(folder / "imagenet_solver.prototxt", "SolverParameter")
        weights = {la.name: la for la in train.layer if la.type in ("Convolution", "InnerProduct")}
        assert list(weights) == [net.layer_name(la) for la in registry.LAYERS], net.name
        for layer, policy in zip(registry.LAYERS, net.policy):
            lr = [(p.lr_mult, p.decay_mult) for p in weights[net.layer_name(layer)].param]
            frozen = policy in (registry.FROZEN, registry.RANDOM_FROZEN)
            assert lr == ([(0, 0), (0, 0)] if frozen else [(1, 1), (2, 0)]), (net.name, layer)
        assert weights[net.layer_name("fc8")].inner_product_param.num_output == 1000
        data = train.layer[0]
        assert (data.data_param.batch_size, data.transform_param.crop_size, data.transform_param.mirror) == (
            256, 227, True)
        assert data.data_param.source == "imagenet_train_lmdb"
        vdata = val.layer[0]
        assert (vdata.data_param.batch_size, vdata.transform_param.mirror) == (50, False)
        assert [la.name for la in val.layer[-3:]] == ["prob", "accuracy", "loss"]
        s = net.schedule
        assert (solver.base_lr, solver.stepsize, solver.max_iter, solver.test_iter[0]) == (
            pytest.approx(s.base_lr), s.stepsize, s.max_iter, s.test_iter)
        assert (solver.train_net, list(solver.test_net)) == ("imagenet_train.prototxt", ["imagenet_val.prototxt"])


@pytest.mark.caffe
def test_kit_files_equal_caffes_upgrade_of_the_2014_syntax_nets():
    """For all 170 nets: upgrade_net_proto_text on the 2014 (V0) rendering == the kit's Caffe 1.0 file."""
    cache = {}
    problems = []
    for net in PAPER:
        problems += render_check.verify_net(net, RESULTS_DIR / net.name, cache=cache)
    assert problems == []
    assert sum(1 for key in cache if key[0] == "upgrade") >= 25  # really upgraded the distinct files


@pytest.mark.caffe
def test_netbase_padding_layers_are_folded_into_the_convolutions():
    v0 = render.render_texts(registry.get("netbase"), "leveldb", flavor="v0/")["imagenet_train.prototxt"]
    assert v0.count('type: "padding"') == 4
    upgraded = render_check.upgrade_net_text(v0)
    assert "pad2" not in upgraded and "pad: 2" in upgraded


@pytest.mark.caffe
def test_the_upgrade_check_notices_a_changed_value(tmp_path):
    net = registry.get("transfer0A0B_1_3")
    render.render([net], tmp_path, DATA_DIR)
    path = tmp_path / net.name / "imagenet_train.prototxt"
    path.write_text(path.read_text().replace("kernel_size: 11", "kernel_size: 7"))
    problems = render_check.verify_net(net, tmp_path / net.name)
    assert len(problems) == 1 and "layer conv1 differs" in problems[0]


@pytest.mark.caffe
def test_kit_files_equal_the_original_repository(tmp_path):
    original = os.environ.get("XFER_ORIGINAL_RESULTS")
    if not original:
        pytest.skip("set XFER_ORIGINAL_RESULTS to the results/ folder of a checkout of the original repository")
    cache, problems, compared = {}, [], 0
    for net in PAPER:
        if (Path(original) / net.name / "imagenet_train.prototxt").exists():
            problems += render_check.verify_against_original(net, Path(original) / net.name,
                                                             RESULTS_DIR / net.name, cache=cache)
            compared += 1
    assert compared and problems == []


def test_links_are_relative_and_point_into_the_data_dir(tmp_path):
    net = registry.get("transfer0A0B_1_3")
    folder = RESULTS_DIR / net.name
    assert os.readlink(folder / "imagenet_train_lmdb") == "../../ilsvrc12/data/half0B_train/lmdb"
    assert os.readlink(folder / "imagenet_val_lmdb") == "../../ilsvrc12/data/half0B_valid/lmdb"
    assert os.readlink(folder / "imagenet_mean.binaryproto") == "../../ilsvrc12/data/half0A_train/mean.binaryproto"
    assert os.readlink(folder / "basenet") == "../half0A"
    assert not (RESULTS_DIR / "half0A" / "basenet").is_symlink()
    # another out/data dir: links still relative, and they resolve to the datasets
    data, out = tmp_path / "data", tmp_path / "deep" / "runs"
    for d in ("half0B_train/leveldb", "half0B_valid/leveldb", "half0A_train"):
        (data / d).mkdir(parents=True)
    (data / "half0A_train" / "mean.binaryproto").write_bytes(b"mean")
    render.render([registry.get("half0A"), net], out, data, backend="leveldb")
    link = out / net.name / "imagenet_train_leveldb"
    assert not os.path.isabs(os.readlink(link))
    assert link.resolve() == (data / "half0B_train" / "leveldb").resolve()
    assert (out / net.name / "imagenet_mean.binaryproto").read_bytes() == b"mean"
    assert (out / net.name / "basenet").resolve() == (out / "half0A").resolve()
    assert 'backend: LEVELDB' in (out / net.name / "imagenet_train.prototxt").read_text()


def test_render_says_when_the_data_the_nets_read_is_not_built(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "results"
    nets = [registry.get("half0A"), registry.get("transfer0A0B_1_3")]
    render.render(nets, out, data)
    err = capsys.readouterr().err
    assert "4 dataset(s) the nets read are not built yet" in err and "xfer db" in err
    for name in ("half0A_train", "half0A_valid", "half0B_train", "half0B_valid"):
        (data / name / "lmdb").mkdir(parents=True)
        (data / name / "mean.binaryproto").write_bytes(b"mean")
    render.render(nets, out, data)
    assert "not built yet" not in capsys.readouterr().err


def test_check_lists_every_drifted_file(tmp_path, capsys):
    nets = registry.match(["half1?", "transfer1A1B_1_2"])
    render.render(nets, tmp_path, DATA_DIR)
    assert render.drift(nets, tmp_path, DATA_DIR) == []
    edited = tmp_path / "half1B" / "imagenet_solver.prototxt"
    edited.write_text(edited.read_text().replace("base_lr: 0.01", "base_lr: 0.02"))
    (tmp_path / "transfer1A1B_1_2" / "basenet").unlink()
    os.symlink("../half1B", tmp_path / "transfer1A1B_1_2" / "basenet")
    (tmp_path / "half1A" / "imagenet_val.prototxt").unlink()
    problems = render.drift(nets, tmp_path, DATA_DIR)
    assert len(problems) == 3
    assert any(str(edited) in p for p in problems) and any("basenet" in p for p in problems)
    code = cli.main(["render", "--check", "--out", str(tmp_path), "half1?", "transfer1A1B_1_2"])
    assert code == 1 and "3 problem(s)" in capsys.readouterr().out


def test_render_never_deletes_or_overwrites_work(tmp_path):
    net = registry.get("transfer0A0A_1_4")
    folder = render.render([net], tmp_path, DATA_DIR)[0]
    precious = ["caffe_imagenet_train_iter_10000.caffemodel", "log.txt", "notes.md"]
    for name in precious:
        (folder / name).write_text("work")
    edited = folder / "imagenet_train.prototxt"
    edited.write_text(edited.read_text() + "# my note\n")
    with pytest.raises(XferError) as err:
        render.render([net], tmp_path, DATA_DIR)
    assert "--force" in str(err.value)
    assert edited.read_text().endswith("# my note\n")
    render.render([net], tmp_path, DATA_DIR, backend="leveldb", force=True)
    assert not edited.read_text().endswith("# my note\n")
    assert all((folder / name).read_text() == "work" for name in precious)
    assert not (folder / "imagenet_train_lmdb").is_symlink() and (folder / "imagenet_train_leveldb").is_symlink()
    (folder / "imagenet_val_leveldb").unlink()
    (folder / "imagenet_val_leveldb").mkdir()  # a real folder where a link belongs: left alone, clear error
    with pytest.raises(XferError):
        render.render([net], tmp_path, DATA_DIR, backend="leveldb")
    assert (folder / "imagenet_val_leveldb").is_dir()


def test_overrides_change_the_schedule_and_batches():
    net = registry.get("half0A", "mini")
    texts = render.render_texts(net, overrides={"max_iter": 7, "snapshot": 7, "test_interval": 5, "test_iter": 2,
                                                "base_lr": 0.02, "train_batch": 8, "val_batch": 4})
    solver = texts["imagenet_solver.prototxt"]
    assert "max_iter: 7\n" in solver and "base_lr: 0.02\n" in solver and "test_iter: 2\n" in solver
    assert "batch_size: 8\n" in texts["imagenet_train.prototxt"]
    assert "batch_size: 4\n" in texts["imagenet_val.prototxt"]
    alone = render.render_texts(net, overrides={"val_batch": 64})["imagenet_solver.prototxt"]
    assert "test_iter: 79\n" in alone  # 5000 val images of half A at 64 a batch: still the whole set, once
    paper = render.render_texts(registry.get("half0A"), overrides={"val_batch": 25})["imagenet_solver.prototxt"]
    assert "test_iter: 1000\n" in paper  # the paper's fixed test_iter stays
    with pytest.raises(XferError) as err:
        render.render_texts(net, overrides={"max_iters": 7})
    assert "max_iters" in str(err.value)


def test_shared_images_mode_reads_list_files_through_image_data(tmp_path):
    net = registry.get("transfer0A0B_1_2", "mini")
    folder = render.render([net], tmp_path / "out", tmp_path / "data", shared_images=True)[0]
    train = (folder / "imagenet_train.prototxt").read_text()
    assert 'type: "ImageData"' in train and 'source: "imagenet_train_images.txt"' in train
    assert 'root_folder: "imagenet_images/"' in train and "is_color: false" in train
    assert os.readlink(folder / "imagenet_train_images.txt") == "../../data/half0B_train/images.txt"
    assert os.readlink(folder / "imagenet_images") == "../../data/_images"
    assert not (folder / "imagenet_train_lmdb").is_symlink()


def test_template_errors_name_the_template_line(tmp_path):
    broken = tmp_path / "templates"
    broken.mkdir()
    for path in TEMPLATES_DIR.rglob("*.j2"):
        (broken / path.relative_to(TEMPLATES_DIR)).parent.mkdir(parents=True, exist_ok=True)
        (broken / path.relative_to(TEMPLATES_DIR)).write_text(path.read_text())
    layers = broken / "_layers.prototxt.j2"
    lines = layers.read_text().splitlines(keepends=True)
    line = next(i for i, text in enumerate(lines) if "num_output: {{ w.num_output }}" in text)
    lines[line] = lines[line].replace("w.num_output", "w.num_outputs")
    layers.write_text("".join(lines))
    with pytest.raises(XferError) as err:
        render.render_texts(registry.get("half0A"), templates_dir=broken)
    assert err.value.path.endswith("_layers.prototxt.j2") and err.value.line == line + 1


def test_preserve_variant_renders_through_the_same_templates():
    net = registry.preserve_net("paper", "1", "B", "A", 2, 2)
    train = render.render_texts(net)["imagenet_train.prototxt"]
    assert 'name: "conv4"' in train and 'name: "conv5-new"' in train and 'name: "conv3"' in train
    conv3 = train.split('name: "conv3"')[1].split("layer {")[0]
    conv2 = train.split('name: "conv2"')[1].split("layer {")[0]
    assert "lr_mult: 1" in conv3 and "lr_mult: 0" in conv2


def test_nets_command_lists_the_registry(capsys):
    assert cli.main(["nets", "transfer0A0B_*"]) == 0
    out = capsys.readouterr().out
    assert out.count("transfer0A0B_1_") == 7 and "FFFFFnnn" in out
    assert cli.main(["nets", "--suite", "mini", "transfer0B0B_1_1"]) == 0
    assert cli.main(["nets", "nope*"]) == 2


# ---- pycaffe: every shape instantiates (test-only variant: the data layer becomes DummyData of batch 2) ------

def dummy_variant(pb2, text, arch, batch=2):
    """The net with its data layer replaced by random DummyData (no database needed)."""
    net = render_check.parse(text, pb2.NetParameter)
    data = net.layer[0]
    side = arch.crop or arch.image_size
    data.type = "DummyData"
    data.ClearField("transform_param")
    data.ClearField("data_param")
    param = data.dummy_data_param
    param.shape.add().dim.extend([batch, arch.channels, side, side])
    param.shape.add().dim.extend([batch])
    param.data_filler.add(type="gaussian", std=1.0)
    param.data_filler.add(type="constant", value=1)
    return str(net)


def expected_shapes(arch, batch=2):
    """Blob shapes by CaffeNet arithmetic (Caffe rounds pooling up)."""
    side, shapes = arch.crop or arch.image_size, {}
    names = iter(["conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5"])
    for kind, spec in [("c", arch.layers[0]), ("p", None), ("c", arch.layers[1]), ("p", None),
                       ("c", arch.layers[2]), ("c", arch.layers[3]), ("c", arch.layers[4]), ("p", None)]:
        if kind == "c":
            side, channels = (side + 2 * spec.pad - spec.kernel) // spec.stride + 1, spec.num_output
        else:
            side = -(-(side - arch.pool_kernel) // arch.pool_stride) + 1
        shapes[next(names)] = (batch, channels, side, side)
    for layer, spec in zip(("fc6", "fc7", "fc8"), arch.layers[5:]):
        shapes[layer] = (batch, spec.num_output)
    return shapes


@pytest.mark.caffe
@pytest.mark.parametrize("suite,name", [("paper", "netbase"), ("paper", "transfer0A0B_1_3"),
                                        ("paper", "transfer-ft1B1A_1_5"), ("mini", "half0A"),
                                        ("mini", "transfer-ft2B2A_1_6"), ("mini", "nolearn_1_2")])
def test_train_and_val_nets_instantiate_with_the_expected_shapes(caffe, pb2, tmp_path, suite, name):
    net = registry.get(name, suite)
    arch = net.spec()
    texts = render.render_texts(net)
    expect = {(net.layer_name(la) if la in registry.LAYERS else la): shape
              for la, shape in expected_shapes(arch).items()}
    for fname, phase in (("imagenet_train.prototxt", caffe.TRAIN), ("imagenet_val.prototxt", caffe.TEST)):
        path = tmp_path / fname
        path.write_text(dummy_variant(pb2, texts[fname], arch))
        cnet = caffe.Net(str(path), phase)
        for blob, shape in expect.items():
            assert cnet.blobs[blob].data.shape == shape, (name, fname, blob)
        conv2 = cnet.params[net.layer_name("conv2")][0].data.shape
        assert conv2 == (arch.layers[1].num_output, arch.layers[0].num_output // 2, 5, 5)  # group 2
        out = cnet.forward()
        if phase == caffe.TEST:
            assert list(cnet.outputs) == ["accuracy", "loss"]  # test output #0 accuracy, #1 loss, as in the paper
            assert 0.0 <= float(out["accuracy"]) <= 1.0 and np.isfinite(out["loss"])


@pytest.mark.caffe
def test_mini_solver_trains_tuned_layers_and_keeps_frozen_ones(caffe, pb2, tmp_path, monkeypatch):
    net = registry.get("transfer0A0B_1_2", "mini")
    folder = render.render([net], tmp_path, tmp_path / "data",
                           overrides={"max_iter": 3, "test_interval": 100, "display": 0})[0]
    for fname in ("imagenet_train.prototxt", "imagenet_val.prototxt"):
        path = folder / fname
        path.write_text(dummy_variant(pb2, path.read_text(), net.spec(), batch=4))
    monkeypatch.chdir(folder)
    caffe.set_mode_cpu()
    solver = caffe.get_solver("imagenet_solver.prototxt")
    before = {name: solver.net.params[name][0].data.copy() for name in ("conv1", "conv2", "conv3-new", "fc8-new")}
    solver.step(3)
    after = {name: solver.net.params[name][0].data for name in before}
    assert np.array_equal(before["conv1"], after["conv1"]) and np.array_equal(before["conv2"], after["conv2"])
    assert not np.array_equal(before["conv3-new"], after["conv3-new"])
    assert not np.array_equal(before["fc8-new"], after["fc8-new"])
    assert list(solver.test_nets[0].outputs) == ["accuracy", "loss"]
