"""Layer-by-layer analysis: linear CKA (`xfer similarity`) and linear probes (`xfer probe`), on synthetic data for
the maths and on real nets that real Caffe trains in seconds (tests/conftest.py's tiny tree)."""
import json

import numpy as np
import pytest

from helpers import xfer
from xfer.analysis import activations, layerwise, probe, similarity
from xfer.nets import layout, registry
from xfer.run import train

TRANSFERS = ("transfer0A0B_1_3", "transfer-ft0A0B_1_3", "transfer0B0B_1_3")


# ---- the maths, on synthetic data ---------------------------------------------------------------------------------

def orthogonal(size, rng):
    q, r = np.linalg.qr(rng.normal(size=(size, size)))
    return q * np.sign(np.diag(r))


def feature_form(x, y):
    x, y = x - x.mean(0), y - y.mean(0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def test_cka_is_one_for_the_same_and_invariant_to_rotation_and_scale():
    rng = np.random.RandomState(0)
    x = rng.normal(size=(200, 30)) @ rng.normal(size=(30, 30))  # correlated features
    assert similarity.linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert similarity.linear_cka(x, 3.7 * x @ orthogonal(30, rng) + 5.0) == pytest.approx(1.0, abs=1e-9)
    y = np.tanh(x[:, :12]) + 0.5 * rng.normal(size=(200, 12))
    assert similarity.linear_cka(x @ orthogonal(30, rng) * 0.01, y) == pytest.approx(similarity.linear_cka(x, y))
    # ...but not to an arbitrary invertible map that stretches some directions far more than others
    stretched = x @ np.diag(np.logspace(0, 3, 30))
    assert similarity.linear_cka(x, stretched) < 0.9
    # independent features of the same images: far from 1
    assert similarity.linear_cka(x, rng.normal(size=(200, 30))) < 0.3


def test_cka_gram_and_feature_forms_agree_and_dead_layers_are_nan():
    rng = np.random.RandomState(1)
    x, wide = rng.normal(size=(40, 8)), rng.normal(size=(40, 300))  # 308 features > 2 x 40 rows: the Gram form
    y = np.hstack([x, wide[:, :5]]) @ rng.normal(size=(13, 300)) + wide
    assert similarity.linear_cka(x, y) == pytest.approx(feature_form(x, y), rel=1e-9)
    assert similarity.linear_cka(x, x[:, :4]) == pytest.approx(feature_form(x, x[:, :4]), rel=1e-9)
    assert np.isnan(similarity.linear_cka(x, np.ones((40, 6))))
    with pytest.raises(ValueError):
        similarity.linear_cka(x, x[:30])


def test_probe_is_high_on_a_separable_set_and_at_chance_on_shuffled_labels():
    rng = np.random.RandomState(2)
    centres = rng.normal(scale=4.0, size=(3, 20))
    labels = rng.randint(0, 3, 1200)
    points = centres[labels] + rng.normal(size=(1200, 20))
    train_x, valid_x, train_y, valid_y = points[:600], points[600:], labels[:600], labels[600:]
    assert probe.fit_score(train_x, train_y, valid_x, valid_y) > 0.97
    shuffled = rng.permutation(labels)
    accuracy = probe.fit_score(train_x, shuffled[:600], valid_x, shuffled[600:])
    assert abs(accuracy - probe.chance(shuffled[600:])) < 0.08


def test_pooling_keeps_small_maps_and_averages_large_ones():
    small = np.arange(2 * 4 * 3 * 3, dtype=np.float32).reshape(2, 4, 3, 3)
    assert probe.pooled(small).shape == (2, 36)
    large = np.random.RandomState(3).rand(2, 96, 55, 55).astype(np.float32)
    out = probe.pooled(large)
    assert out.shape == (2, 96 * 6 * 6) and out.shape[1] <= probe.MAX_FEATURES
    assert out.reshape(2, 96, 36).mean(axis=2) == pytest.approx(large.mean(axis=(2, 3)), rel=0.01)
    assert probe.pooled(large, max_features=96).shape == (2, 96)
    assert probe.pooled(large, max_features=96)[0] == pytest.approx(large[0].mean(axis=(1, 2)), rel=1e-4)


# ---- real nets ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tree(tmp_path_factory, tiny_render):
    """Bases A and B from different random seeds, then AnB, AnB+ and BnB at n = 3, all trained by real Caffe."""
    out = tmp_path_factory.mktemp("analysis") / "results"
    tiny_render(out, ["half0A"], random_seed=2)
    tiny_render(out, ["half0B", *TRANSFERS, "transfer0A0B_1_5"], random_seed=3)
    for name in ("half0A", "half0B", *TRANSFERS):
        assert train.train(registry.get(name, "mini"), out, cpu=True, quiet=True, poll=0.2) == 0
    return out


@pytest.mark.caffe
def test_similarity_command_on_real_nets(tree, tmp_path):
    done = xfer("similarity", "half0B", "half0B", "half0A", "transfer0A0B_1_3", "transfer0B0B_1_3",
                "--suite", "mini", "--results", str(tree), "--images", "30", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "similarity_half0B.json").read_text())
    cka = result["cka"]
    assert result["images"] == 30 and result["layers"] == list(registry.LAYERS)
    assert all(cka["half0B"][layer] == pytest.approx(1.0, abs=1e-6) for layer in registry.LAYERS)
    assert min(cka["half0A"].values()) < 0.95  # another net, from another seed, on another task
    # Layers 1..3 of a transfer are its base's, frozen (same weights, same mean): the base's activations exactly,
    # matched by position although the transfer's upper layers are named conv4-new ... fc8-new.
    for layer in ("conv1", "conv2", "conv3"):
        assert cka["transfer0A0B_1_3"][layer] == pytest.approx(cka["half0A"][layer], abs=1e-9)
        assert cka["transfer0B0B_1_3"][layer] == pytest.approx(1.0, abs=1e-6)
    assert cka["transfer0B0B_1_3"]["fc8"] < 1 - 1e-6  # retrained from a new initialisation
    for ext in ("csv", "png", "pdf"):
        assert (tmp_path / f"similarity_half0B.{ext}").stat().st_size > 0
    assert "transfer0A0B_1_3" in done.stdout and "conv5" in done.stdout


@pytest.mark.caffe
def test_activations_follow_the_nets_preprocessing(tree):
    images, labels = activations.read_images(activations.net_val_database(tree / "half0B"), 10)
    assert images.shape == (10, 1, 28, 28) and images.dtype == np.uint8 and set(labels) <= set(range(5))
    acts = activations.activations(tree / "half0B", images, ("data", "conv1", "fc7", "fc8"))
    assert acts["conv1"].shape == (10, 16, 14, 14) and acts["fc8"].shape == (10, 10)
    assert acts["conv1"].min() >= 0 and acts["fc7"].min() >= 0  # after the in-place ReLU
    assert acts["fc8"].min() < 0  # raw outputs
    mean = activations.dbformat.read_mean(tree / "half0B" / layout.MEAN_LINK)
    assert acts["data"] == pytest.approx((images - mean) * 0.00390625, abs=1e-6)


@pytest.mark.caffe
def test_probe_command_on_a_real_base(tree, tmp_path):
    done = xfer("probe", "half0A", "--data", "half0B", "--suite", "mini", "--results", str(tree),
                "--train-images", "40", "--valid-images", "40", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "probe_half0A_half0B.json").read_text())
    assert result["layers"] == ["data", *registry.LAYERS] and result["chance"] == pytest.approx(0.2)
    assert all(0 <= acc <= 1 for acc in result["accuracy"].values())
    assert result["accuracy"]["data"] > 0.8  # the tiny classes differ in brightness: the pixels separate them
    assert (tmp_path / "probe_half0A_half0B.png").stat().st_size > 0
    families = probe.trained_families(tree, "half0A", "half0B")
    assert set(families) == {"baseB", "AnB", "AnB+"} and list(families["AnB"]) == [3]
    assert families["baseB"][0]["nets"] == ["half0B"]


@pytest.mark.caffe
def test_unfinished_and_unknown_nets_are_refused(tree, tmp_path):
    unfinished = xfer("similarity", "half0B", "transfer0A0B_1_5", "--suite", "mini", "--results", str(tree),
                      "--out", str(tmp_path))
    assert unfinished.returncode == 2
    assert "has not finished training" in unfinished.stderr and "xfer run transfer0A0B_1_5" in unfinished.stderr
    unknown = xfer("probe", "half0A", "--data", "half7Z", "--suite", "mini", "--results", str(tree))
    assert unknown.returncode == 2 and "no dataset half7Z_train" in unknown.stderr
    no_db = xfer("similarity", "half0B", "half0A", "--data", "half7Z_valid", "--results", str(tree))
    assert no_db.returncode == 2 and "no LMDB or LevelDB database here" in no_db.stderr
    assert "half7Z_valid" in no_db.stderr
    bad_layer = xfer("similarity", "half0B", "half0A", "--layers", "conv9", "--results", str(tree))
    assert bad_layer.returncode == 2 and "conv9" in bad_layer.stderr
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.mark.caffe
def test_layerwise_figures_of_a_tree(tree, tmp_path):
    """What the demo and the notebook draw: the trained nets of the first split with both bases trained."""
    assert layerwise.choose(tree) == {"A": "half0A", "B": "half0B", "AnB": ["transfer0A0B_1_3"],
                                      "BnB": ["transfer0B0B_1_3"]}  # transfer0A0B_1_5 is rendered, not trained
    written = layerwise.draw_all(tree, tmp_path / "figures")
    assert sorted(p.name for p in written) == ["probe_half0A_half0B.pdf", "probe_half0A_half0B.png",
                                               "similarity_half0B.pdf", "similarity_half0B.png"]
    cka = json.loads((tmp_path / "figures" / "similarity_half0B.json").read_text())["cka"]
    assert list(cka) == ["half0A", "transfer0A0B_1_3", "transfer0B0B_1_3"]
    lines = []
    assert layerwise.draw_all(tmp_path / "figures", tmp_path / "none", log=lines.append) == []
    assert lines and "skipped" in lines[0] and not (tmp_path / "none").exists()
