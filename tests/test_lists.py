"""Whole lists from image folders (generic class trees, raw ILSVRC12 layout, Caffe's aux lists) and list checks."""
import json

import numpy as np
import pytest
from PIL import Image

from xfer import cli
from xfer.data import listio, lists, wordnet
from xfer.errors import XferError

WNIDS = ("n01440764", "n01443537", "n02687172")  # tench, goldfish, aircraft carrier


def save_image(path, size=(6, 5)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), 128, dtype=np.uint8)).save(path)


def make_tree(root, classes, per_class, ext=".png"):
    for name in classes:
        for i in range(per_class):
            save_image(root / name / f"img{i}{ext}")


def test_class_folders_give_sorted_labels_and_lists(tmp_path):
    make_tree(tmp_path / "train", ["zebra", "ant", "cow"], 3)
    make_tree(tmp_path / "val", ["cow", "ant"], 1)
    (tmp_path / "train" / "ant" / "notes.txt").write_text("not an image")
    summary = lists.write_whole_lists_from_folders(tmp_path / "train", tmp_path / "val", tmp_path / "data")
    assert summary == {"classes": ["ant", "cow", "zebra"], "train": 9, "valid": 2}
    train = (tmp_path / "data" / "whole_train" / "files.txt").read_text().splitlines()
    assert train[:3] == ["ant/img0.png 0", "ant/img1.png 0", "ant/img2.png 0"] and train[-1] == "zebra/img2.png 2"
    assert (tmp_path / "data" / "whole_valid" / "files.txt").read_text() == "ant/img0.png 0\ncow/img0.png 1\n"
    assert (tmp_path / "data" / "synsets.txt").read_text() == "ant\ncow\nzebra\n"
    roots = json.loads((tmp_path / "data" / "image_roots.json").read_text())
    assert roots == {"train": str(tmp_path / "train"), "valid": str(tmp_path / "val")}


def test_class_without_images_is_an_error(tmp_path):
    make_tree(tmp_path / "train", ["a"], 2)
    (tmp_path / "train" / "b").mkdir()
    with pytest.raises(XferError, match="class b has no images") as err:
        lists.write_whole_lists_from_folders(tmp_path / "train", None, tmp_path / "data")
    assert err.value.path == tmp_path / "train" / "b"


def test_validation_class_unknown_to_training(tmp_path):
    make_tree(tmp_path / "train", ["a"], 1)
    make_tree(tmp_path / "val", ["b"], 1)
    with pytest.raises(XferError, match="not among the training classes: b"):
        lists.write_whole_lists_from_folders(tmp_path / "train", tmp_path / "val", tmp_path / "data")


@pytest.fixture
def raw_ilsvrc(tmp_path):
    """A miniature raw ILSVRC12 tree: train/<wnid>/*.JPEG and a flat val/ folder."""
    for wnid in WNIDS:
        for i in (2, 10):
            save_image(tmp_path / "train" / wnid / f"{wnid}_{i}.JPEG")
    for i in range(1, 4):
        save_image(tmp_path / "val" / f"ILSVRC2012_val_{i:08d}.JPEG")
    return tmp_path


@pytest.mark.parametrize("form", ["caffe", "wnid", "kaggle"])
def test_raw_ilsvrc_tree_with_each_label_form(raw_ilsvrc, form):
    texts = {"caffe": "ILSVRC2012_val_00000001.JPEG 2\nILSVRC2012_val_00000002.JPEG 0\n"
                      "ILSVRC2012_val_00000003.JPEG 1\n",
             "wnid": f"ILSVRC2012_val_00000001.JPEG {WNIDS[2]}\nILSVRC2012_val_00000002.JPEG {WNIDS[0]}\n"
                     f"ILSVRC2012_val_00000003.JPEG {WNIDS[1]}\n",
             "kaggle": f"ImageId,PredictionString\nILSVRC2012_val_00000002,{WNIDS[0]} 1 2 3 4\n"
                       f"ILSVRC2012_val_00000001,{WNIDS[2]} 5 6 7 8 {WNIDS[2]} 1 1 2 2\n"
                       f"ILSVRC2012_val_00000003,{WNIDS[1]} 0 0 9 9\n"}
    labels = raw_ilsvrc / "labels.txt"
    labels.write_text(texts[form])
    data = raw_ilsvrc / "data"
    lists.write_imagenet_lists(data, raw_ilsvrc / "train", raw_ilsvrc / "val", labels)
    assert (data / "whole_valid" / "files.txt").read_text() == (
        "ILSVRC2012_val_00000001.JPEG 2\nILSVRC2012_val_00000002.JPEG 0\nILSVRC2012_val_00000003.JPEG 1\n")
    # file order inside a class is string order, as in Caffe's train.txt (10 before 2)
    assert (data / "whole_train" / "files.txt").read_text().splitlines()[:2] == [
        f"{WNIDS[0]}/{WNIDS[0]}_10.JPEG 0", f"{WNIDS[0]}/{WNIDS[0]}_2.JPEG 0"]
    assert (data / "synset_words.txt").read_text().splitlines()[0] == "n01440764 tench, Tinca tinca"


def test_flat_validation_folder_needs_labels(raw_ilsvrc):
    with pytest.raises(XferError, match="labels are needed"):
        lists.write_imagenet_lists(raw_ilsvrc / "data", raw_ilsvrc / "train", raw_ilsvrc / "val")


def test_label_file_missing_an_image(raw_ilsvrc):
    labels = raw_ilsvrc / "labels.txt"
    labels.write_text("ILSVRC2012_val_00000001.JPEG 0\n")
    with pytest.raises(XferError, match="no label for validation image ILSVRC2012_val_00000002.JPEG"):
        lists.write_imagenet_lists(raw_ilsvrc / "data", raw_ilsvrc / "train", raw_ilsvrc / "val", labels)


def test_synset_missing_from_wordnet(tmp_path):
    make_tree(tmp_path / "train", ["n01440764", "n99999999"], 1)
    with pytest.raises(XferError, match="n99999999 is not a WordNet 3.0 noun") as err:
        lists.write_whole_lists_from_folders(tmp_path / "train", None, tmp_path / "data")
    assert err.value.line == 2 and err.value.path.name == "synsets.txt"


@pytest.fixture
def aux(tmp_path):
    """Caffe's auxiliary files (train.txt, val.txt, synsets.txt) and the images they name."""
    (tmp_path / "synsets.txt").write_text("".join(w + "\n" for w in WNIDS))
    train = [f"{w}/{w}_1.JPEG {i}" for i, w in enumerate(WNIDS)]
    for line in train:
        save_image(tmp_path / "train" / line.split()[0])
    save_image(tmp_path / "val" / "v1.JPEG")
    (tmp_path / "train.txt").write_text("\n".join(train) + "\n")
    (tmp_path / "val.txt").write_text("v1.JPEG 1\n")
    return tmp_path


def run_aux(aux, **kw):
    return lists.write_imagenet_lists(aux / "data", aux / "train", aux / "val", train_list=aux / "train.txt",
                                      val_list=aux / "val.txt", synsets=aux / "synsets.txt", **kw)


def test_caffe_aux_lists_are_checked_and_copied(aux):
    assert run_aux(aux)["train"] == 3
    assert (aux / "data" / "whole_train" / "files.txt").read_text() == (aux / "train.txt").read_text()
    assert (aux / "data" / "synsets.txt").read_text() == (aux / "synsets.txt").read_text()


@pytest.mark.parametrize("line, message", [
    ("n01440764/x.JPEG 7", "label 7 out of range"),
    ("n01440764/n01440764_1.JPEG 0", "duplicate entry n01440764/n01440764_1.JPEG \\(first on line 1\\)"),
    ("n01440764/x.JPEG zero", "malformed list line"),
    ("n01440764/x.JPEG 0\r", "carriage return"),
])
def test_bad_list_lines_name_file_and_line(aux, line, message):
    with open(aux / "train.txt", "a", newline="") as out:
        out.write(line + "\n")
    with pytest.raises(XferError, match=message) as err:
        run_aux(aux)
    assert err.value.path == aux / "train.txt" and err.value.line == 4


def test_listed_image_that_does_not_exist(aux):
    (aux / "train" / WNIDS[1] / f"{WNIDS[1]}_1.JPEG").unlink()
    with pytest.raises(XferError, match="not found under") as err:
        run_aux(aux)
    assert err.value.line == 2
    assert run_aux(aux, check_files=False)["train"] == 3


def test_existing_lists_are_not_overwritten_without_force(aux):
    run_aux(aux)
    run_aux(aux)  # same content: nothing to do
    (aux / "val.txt").write_text("v1.JPEG 2\n")
    with pytest.raises(XferError, match="exists with different content"):
        run_aux(aux)
    run_aux(aux, force=True)
    assert (aux / "data" / "whole_valid" / "files.txt").read_text() == "v1.JPEG 2\n"


def test_cli_exit_codes(aux, capsys):
    args = ["imagenet-lists", "--data-dir", str(aux / "data"), "--train", str(aux / "train"), "--val",
            str(aux / "val"), "--train-list", str(aux / "train.txt"), "--val-list", str(aux / "val.txt")]
    assert cli.main(args) == 2 and "--synsets" in capsys.readouterr().err
    assert cli.main(args + ["--synsets", str(aux / "synsets.txt")]) == 0
    assert "3 classes, 3 training and 1 validation images" in capsys.readouterr().out


def test_read_list_keeps_spaces_in_paths(tmp_path):
    path = tmp_path / "files.txt"
    path.write_text("a dir/x y.jpg 3\n")
    assert listio.read_list(path) == [("a dir/x y.jpg", 3)]


def test_wordnet_parents_include_instance_hypernyms():
    # Caffe-era ImageNet has no instance synsets among its classes, but the closure must follow @i links:
    # "Mississippi" (a river) is an instance of river, which is a natural object.
    nouns = wordnet.load_nouns()
    mississippi = [s for s in nouns.values() if "Mississippi River" in s.words][0]
    assert mississippi.parents and not wordnet.is_manmade(mississippi.wnid)
    assert wordnet.is_manmade("n02687172") and not wordnet.is_manmade("n01440764")
