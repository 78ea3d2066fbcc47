"""The registry: the paper's 170 nets by name, their policies and schedules, the mini suite, the name grammar."""
import pytest

from xfer.nets import registry as r
from xfer.errors import XferError


def expected_paper_names():
    """The issue's list, spelled out independently of the registry's own loops."""
    names = [f"half{s}{h}" for s in "0123" for h in "AB"] + ["halfnatmanA", "halfnatmanB", "netbase"]
    names += [f"reduced-{k:04d}" for k in (1, 2, 5, 10, 25, 50, 100, 250, 500, 750, 1000, 1300)]
    names += [f"nolearn_1_{n}" for n in range(1, 8)]
    names += [f"transfer{s}{x}{s}{y}_1_{n}" for s in "0123" for x, y in ("AA", "AB", "BA") for n in range(1, 8)]
    names += [f"transfer-ft{s}{x}{s}{y}_1_{n}" for s in "01" for x, y in ("AA", "AB", "BA") for n in range(1, 8)]
    names += [f"transfernatman{xy}_1_{n}" for xy in ("AB", "BA") for n in range(1, 8)]
    return names


def test_paper_suite_is_exactly_the_170_nets_of_the_paper():
    names = [net.name for net in r.nets("paper")]
    assert len(names) == len(set(names)) == 170
    assert sorted(names) == sorted(expected_paper_names())


def test_every_folder_of_the_papers_results_tree_is_a_registry_net(paper_dir):
    folders = sorted(p.name for p in (paper_dir / "results").iterdir() if p.is_dir())
    assert len(folders) == 148
    for name in folders:
        assert r.get(name) == r.parse_name(name)


def test_bases_come_before_the_nets_that_need_them():
    for suite in r.suite_names():
        seen = set()
        for net in r.nets(suite):
            assert all(dep in seen for dep in r.dependencies(net)), net.name
            seen.add(net.name)


@pytest.mark.parametrize("name,family,base,train,val,policy", [
    ("half2B", "base", None, "half2B_train", "half2B_valid", "tttttttt"),
    ("halfnatmanA", "natman-base", None, "halfnatmanA_train", "halfnatmanA_valid", "tttttttt"),
    ("netbase", "netbase", None, "whole_train", "whole_valid", "tttttttt"),
    ("reduced-0005", "reduced", None, "reduced0005_train", "whole_valid", "tttttttt"),
    ("reduced-1300", "reduced", None, "whole_train", "whole_valid", "tttttttt"),
    ("nolearn_1_3", "nolearn", None, "whole_train", "whole_valid", "RRRttttt"),
    ("transfer0A0B_1_3", "transfer", "half0A", "half0B_train", "half0B_valid", "FFFnnnnn"),
    ("transfer3B3A_1_7", "transfer", "half3B", "half3A_train", "half3A_valid", "FFFFFFFn"),
    ("transfer1A1A_1_1", "selffer", "half1A", "half1A_train", "half1A_valid", "Fnnnnnnn"),
    ("transfer-ft1B1A_1_5", "transfer-ft", "half1B", "half1A_train", "half1A_valid", "TTTTTnnn"),
    ("transfer-ft0A0A_1_2", "selffer-ft", "half0A", "half0A_train", "half0A_valid", "TTnnnnnn"),
    ("transfernatmanAB_1_4", "natman-transfer", "halfnatmanA", "halfnatmanB_train", "halfnatmanB_valid",
     "FFFFnnnn"),
])
def test_nets_are_the_papers_definitions(name, family, base, train, val, policy):
    letters = {"F": r.FROZEN, "T": r.TUNED, "n": r.FRESH, "R": r.RANDOM_FROZEN, "t": r.TRAINED}
    net = r.get(name)
    assert (net.family, net.base, net.train_data, net.val_data) == (family, base, train, val)
    assert net.policy == tuple(letters[c] for c in policy)
    assert net.num_classes == 1000  # 1000 outputs even for the 500-class halves, as in the paper
    assert net.schedule.snapshot_prefix == "caffe_imagenet_train"


def test_policy_helpers_follow_the_policy():
    net = r.get("transfer0A0B_1_3")
    assert net.copied_layers() == net.frozen_layers() == ["conv1", "conv2", "conv3"]
    assert [net.layer_name(la) for la in r.LAYERS] == ["conv1", "conv2", "conv3", "conv4-new", "conv5-new",
                                                      "fc6-new", "fc7-new", "fc8-new"]
    ft = r.get("transfer-ft0A0B_1_3")
    assert ft.copied_layers() == ["conv1", "conv2", "conv3"] and ft.frozen_layers() == []
    nolearn = r.get("nolearn_1_2")
    assert nolearn.copied_layers() == [] and nolearn.frozen_layers() == ["conv1", "conv2"]
    assert nolearn.layer_name("fc8") == "fc8"  # no base: nothing to rename against
    assert r.dependencies(net) == ["half0A"] and r.dependencies(nolearn) == []
    assert net.final_snapshot() == "caffe_imagenet_train_iter_450000.caffemodel"


def test_schedules_are_the_papers():
    s = r.get("transfer2A2B_1_4").schedule
    assert (s.base_lr, s.lr_policy, s.gamma, s.stepsize, s.max_iter) == (0.01, "step", 0.1, 100000, 450000)
    assert (s.momentum, s.weight_decay, s.test_iter, s.test_interval) == (0.9, 0.0005, 1000, 1000)
    assert (s.display, s.snapshot, s.solver_mode) == (20, 10000, "GPU")
    red = r.get("reduced-0250").schedule
    assert (red.base_lr, red.stepsize, red.max_iter) == (0.0125, 64000, 200000)
    assert r.get("reduced-0250").final_snapshot() == "caffe_imagenet_train_iter_200000.caffemodel"


def test_unknown_name_lists_the_closest_names():
    with pytest.raises(XferError) as err:
        r.get("transfer0A0C_1_3")
    assert "transfer0A0B_1_3" in str(err.value)
    with pytest.raises(XferError):
        r.get("transfer0B0B_1_3")  # grammatical, but the paper never ran BB nets


@pytest.mark.parametrize("bad", ["transfer0A1B_1_3", "transfer0A0B_1_8", "half4A", "reduced-0003", "nolearn_2_3",
                                 "transfer-ft0A0B_2_3", ""])
def test_parse_name_rejects_names_outside_the_grammar(bad):
    with pytest.raises(XferError):
        r.parse_name(bad)


def test_parse_name_agrees_with_the_registry_for_every_net():
    for suite in r.suite_names():
        for net in r.nets(suite):
            assert r.parse_name(net.name, suite) == net


def test_match_uses_fnmatch_patterns_in_registry_order():
    assert [n.name for n in r.match(["transfer0A0B_1_[12]", "half0?"])] == [
        "half0A", "half0B", "transfer0A0B_1_1", "transfer0A0B_1_2"]
    assert len(r.match([])) == 170 and r.match(["nothing*"]) == []
    assert len(r.match(["transfer-ft*"])) == 42 and len(r.match(["transfer[0-3]*"])) == 84


def test_mini_suite_has_what_the_demo_needs():
    names = {net.name for net in r.nets("mini")}
    for s in "0123":
        assert {f"half{s}A", f"half{s}B"} <= names
        for xy in ("AA", "AB", "BA", "BB"):
            for n in range(1, 8):
                assert {f"transfer{s}{xy[0]}{s}{xy[1]}_1_{n}", f"transfer-ft{s}{xy[0]}{s}{xy[1]}_1_{n}"} <= names
    assert {"halfnatmanA", "halfnatmanB", "netbase", "nolearn_1_4", "transfernatmanBA_1_2"} <= names
    bnb = r.get("transfer0B0B_1_3", "mini")
    assert (bnb.family, bnb.base, bnb.train_data) == ("selffer", "half0B", "half0B_train")


def test_mini_suite_is_a_scaled_caffenet():
    net = r.get("half0A", "mini")
    arch = net.spec()
    assert (arch.channels, arch.image_size, net.num_classes) == (1, 28, 10)
    assert len(arch.layers) == len(r.LAYERS) == 8
    assert [la.kernel > 0 for la in arch.layers] == [True] * 5 + [False] * 3  # 5 conv + 3 inner product
    assert net.schedule.solver_mode == "CPU" and net.schedule.max_iter < 5000
    # test_iter covers each val set once: 5000 images in a 5-class half, 10000 in the whole set
    assert net.schedule.test_iter * arch.val_batch == 5000
    assert r.get("netbase", "mini").schedule.test_iter * arch.val_batch == 10000
    assert r.get("transfernatmanAB_1_3", "mini").schedule.test_iter * arch.val_batch == 4000  # footwear and bags


def test_preserve_variants_are_plain_registry_entries():
    net = r.preserve_net("paper", "0", "A", "B", 3, 2)
    assert net.name == "preserve2_0A0B_1_3" and net.family == "preserve"
    assert net.frozen_layers() == ["conv1", "conv2", "conv3"]
    assert net.copied_layers() == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert [net.layer_name(la) for la in r.LAYERS[5:]] == ["fc6-new", "fc7-new", "fc8-new"]
    assert r.get("preserve2_0A0B_1_3") == net == r.parse_name(net.name)
    assert net.name not in {n.name for n in r.nets("paper")}  # a variant, not one of the 170
    with pytest.raises(XferError):
        r.preserve_net("paper", "0", "A", "B", 7, 2)  # 9 layers


def test_make_net_rejects_inconsistent_entries():
    with pytest.raises(XferError):
        r.make_net("x", "paper", "transfer", "half0B_train", "half0B_valid", policy=(r.FROZEN,) * 8)  # no base
    with pytest.raises(XferError):
        r.make_net("x", "paper", "base", "a", "b", policy=("trained",) * 7)
    with pytest.raises(XferError):
        r.nets("imagenet22k")


def dataset_classes(suite, dataset):
    """Classes of a dataset by its name: whole and reduced sets, a random half, a natman half."""
    classes = r.suite(suite).classes
    if dataset.startswith("halfnatman"):
        return classes[dataset[:len("halfnatmanA")]]
    return classes["half"] if dataset.startswith("half") else classes["whole"]


def test_every_nets_last_layer_has_an_output_per_class_of_its_datasets():
    """Caffe checks labels against fc8's outputs only in debug builds: a label past them trains silently."""
    for suite in r.suite_names():
        for net in r.nets(suite):
            assert net.num_classes >= dataset_classes(suite, net.train_data), net.name
            assert net.num_classes >= dataset_classes(suite, net.val_data), net.name


def test_a_new_suite_is_one_more_registered_instance(monkeypatch):
    import dataclasses
    from xfer.nets import suites
    monkeypatch.setattr(suites, "_SUITES", dict(suites._SUITES))
    suites.register(dataclasses.replace(suites.MINI, name="rehearsal", pairs=("AB",), ft_splits=("0",),
                                        reduced_levels=(1, 10, 6000), results="rehearsal/results"))
    assert "rehearsal" in r.suite_names() and r.default_suite() == "paper"
    names = [net.name for net in r.nets("rehearsal")]
    assert "transfer0A0B_1_3" in names and "transfer0B0A_1_3" not in names and "transfer-ft1A1B_1_3" not in names
    assert [n for n in names if n.startswith("reduced")] == ["reduced-0001", "reduced-0010", "reduced-6000"]
    assert r.get("reduced-6000", "rehearsal").train_data == "whole_train"
    assert r.default_results("rehearsal") == r.default_results("mini").parent.parent / "rehearsal" / "results"
    assert r.get("half0A", "rehearsal").arch == "mini"
    with pytest.raises(XferError):
        suites.register(dataclasses.replace(suites.MINI, name="bad", arch="alexnet"))
