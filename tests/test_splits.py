"""The paper's derivative lists: byte-identical to the original ones (md5), and their rules on small lists."""
import shutil

import numpy as np
import pytest

from xfer import cli
from xfer.data import splits, wordnet
from xfer.errors import XferError
from xfer.data.listio import md5_file, read_list


@pytest.fixture
def paper_valid(paper_dir, tmp_path):
    """A data dir holding the paper's whole validation list (read from ../shared/paper, copied to a temp dir)."""
    (tmp_path / "whole_valid").mkdir()
    shutil.copy(paper_dir / "ilsvrc12" / "whole_valid_files.txt", tmp_path / "whole_valid" / "files.txt")
    return tmp_path


def test_all_eleven_validation_lists_equal_the_papers(paper_valid, paper_dir, capsys):
    args = ["splits", "--data-dir", str(paper_valid), "--synsets", str(paper_dir / "ilsvrc12" / "synsets.txt")]
    assert cli.main(args + ["--verify"]) == 0
    assert "11 of 11 lists equal the paper's (md5)" in capsys.readouterr().out
    checked = splits.verified_files(paper_valid)
    assert len(checked) == 11 and all(rel.endswith("_valid/files.txt") for rel in checked)
    assert splits.verify(paper_valid) == []
    idxmap = (paper_valid / "half0A_valid" / "idxmap.txt").read_text().splitlines()
    assert idxmap[0] == "# Orig_idx new_idx" and len(idxmap) == 501
    assert (paper_valid / "halfnatmanA_valid" / "idxmap.txt").read_text().count("\n") == 1 + 449


def test_a_wrong_list_is_named_and_fails_verify(paper_valid, paper_dir, capsys):
    synsets = str(paper_dir / "ilsvrc12" / "synsets.txt")
    assert cli.main(["splits", "--data-dir", str(paper_valid), "--synsets", synsets]) == 0
    broken = paper_valid / "half2B_valid" / "files.txt"
    broken.write_text(broken.read_text().replace(" 0\n", " 1\n", 1))
    mismatches = splits.verify(paper_valid)
    assert len(mismatches) == 1 and str(broken) in mismatches[0] and "18de8b37378e07e60dc602b6130eeeb2" in mismatches[0]
    assert "paper_md5sums.txt:" in mismatches[0]
    # the broken file differs from what the kit would write: it is kept unless --force ...
    assert cli.main(["splits", "--data-dir", str(paper_valid), "--synsets", synsets, "--verify"]) == 2
    assert "exists with different content" in capsys.readouterr().err
    # ... and --force restores it
    assert cli.main(["splits", "--data-dir", str(paper_valid), "--synsets", synsets, "--verify", "--force"]) == 0
    # a whole list in another order (its first line, class 65, moved to the end): the lists made from it are
    # consistent with it, and the whole list plus the half holding class 65 in each of the 5 pairs differ
    whole = paper_valid / "whole_valid" / "files.txt"
    lines = whole.read_text().splitlines(keepends=True)
    whole.write_text("".join(lines[1:] + lines[:1]))
    capsys.readouterr()
    assert cli.main(["splits", "--data-dir", str(paper_valid), "--synsets", synsets, "--verify", "--force"]) == 1
    out = capsys.readouterr().out
    assert out.count("MISMATCH") == 6 and "5 of 11 lists equal" in out and "fix:" in out


def test_natural_manmade_counts_from_wordnet(paper_dir):
    synsets = (paper_dir / "ilsvrc12" / "synsets.txt").read_text().split()
    natural = wordnet.natural_classes(synsets)
    assert len(natural) == 449 and len(synsets) - len(natural) == 551
    assert 0 in natural  # n01440764 tench
    assert synsets.index("n02687172") not in natural  # aircraft carrier


def test_random_half_follows_legacy_randomstate():
    a = splits.random_half(1, 10)
    expected = sorted(np.random.RandomState([1]).permutation(10)[:5].tolist())  # legacy choice without replacement
    assert a == expected and len(set(a)) == 5
    assert splits.random_half(1, 10) == a and splits.random_half(2, 10) != a


def write_whole(data_dir, part, lines):
    (data_dir / f"whole_{part}").mkdir(parents=True, exist_ok=True)
    (data_dir / f"whole_{part}" / "files.txt").write_text("".join(f"{p} {c}\n" for p, c in lines))


@pytest.fixture
def small(tmp_path):
    """Six classes, class c having c+1 training images, interleaved in file order; one val image per class."""
    train = [(f"c{c}/i{i}.jpg", c) for i in range(6) for c in range(6) if i <= c]
    write_whole(tmp_path, "train", train)
    write_whole(tmp_path, "valid", [(f"v{c}.jpg", c) for c in range(6)])
    return tmp_path


def test_halves_renumber_and_keep_file_order(small):
    written = splits.make_random_halves(small, seed=0)
    assert len(written) == 8  # files.txt + idxmap.txt for A, B of train and valid
    a = splits.random_half(0, 6)
    entries = read_list(small / "half0A_train" / "files.txt")
    assert [label for _, label in entries] == [a.index(c) for i in range(6) for c in range(6) if i <= c and c in a]
    b_valid = read_list(small / "half0B_valid" / "files.txt")
    assert [p for p, _ in b_valid] == [f"v{c}.jpg" for c in range(6) if c not in a]
    assert splits.make_random_halves(small, seed=0) == []  # up to date: nothing rewritten


def test_reduced_keeps_the_first_lines_of_each_class(small):
    splits.make_reduced(small, counts=(1, 2, 1000))
    one = read_list(small / "reduced0001_train" / "files.txt")
    assert one == [(f"c{c}/i0.jpg", c) for c in range(6)]
    two = read_list(small / "reduced0002_train" / "files.txt")
    assert two == [(f"c{c}/i{i}.jpg", c) for i in range(2) for c in range(6) if i <= c]
    assert md5_file(small / "reduced1000_train" / "files.txt") == md5_file(small / "whole_train" / "files.txt")


def test_natman_with_given_natural_classes(small):
    splits.make_natman(small, natural_classes=[4, 1])
    assert (small / "halfnatmanA_valid" / "files.txt").read_text() == "v1.jpg 0\nv4.jpg 1\n"
    assert (small / "halfnatmanB_valid" / "idxmap.txt").read_text() == "# Orig_idx new_idx\n0 0\n2 1\n3 2\n5 3\n"
    with pytest.raises(XferError, match="proper, non-empty subset"):
        splits.make_natman(small, natural_classes=range(6))


def test_make_all_without_wordnet_classes_skips_natman(small, capsys):
    written = splits.make_all(small)
    assert not (small / "halfnatmanA_train").exists() and "not WordNet ids" in capsys.readouterr().out
    assert len(written) == 4 * 8 + 11
    assert splits.verify(small) and all("md5" in m for m in splits.verify(small))  # not the paper's data


def test_class_with_no_images_in_a_whole_list(small):
    (small / "synsets.txt").write_text("".join(f"c{c}\n" for c in range(7)))
    with pytest.raises(XferError, match="1 class\\(es\\) have no images: 6") as err:
        splits.make_random_halves(small, seed=0)
    assert err.value.path.name == "files.txt"
