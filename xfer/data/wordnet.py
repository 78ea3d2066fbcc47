"""WordNet 3.0 nouns, read straight from the database files (Debian's `wordnet-base`, /usr/share/wordnet).

ImageNet's class ids are WordNet 3.0 noun ids: `n01440764` is the synset at byte offset 01440764 of `data.noun`.
The paper's natural / man-made split ("halfnatman") is a WordNet fact: a class is man-made when it descends
(through hypernym and instance-hypernym links) from one of five roots, and natural otherwise.
"""
import functools
import os
import re
from pathlib import Path

from ..errors import XferError

WORDNET_DIR = Path(os.environ.get("XFER_WORDNET_DIR", "/usr/share/wordnet"))
INSTALL_FIX = "install Debian's `wordnet-base` (it is in tools/apt-packages.txt) or set XFER_WORDNET_DIR"

# The roots of the paper's man-made half: artifact, abstraction, nutriment, foodstuff, fare.
MANMADE_ROOTS = ("n00021939", "n00002137", "n07570720", "n07566340", "n07560652")
# Hypernym (@) and instance hypernym (@i): the links that lead from a synset to its parents.
PARENT_POINTERS = ("@", "@i")


WNID = re.compile(r"n\d{8}")


def is_wnid(name: str) -> bool:
    return bool(WNID.fullmatch(name))


class Synset:
    """One noun synset: its id (`n01440764`), its words and the ids of its parents."""

    __slots__ = ("wnid", "words", "parents")

    def __init__(self, wnid, words, parents):
        self.wnid, self.words, self.parents = wnid, words, parents

    def __repr__(self):
        return f"Synset({self.wnid}, {self.words[0]!r})"


def parse_data_line(line: str) -> Synset:
    """Parse one line of data.noun (format in wndb(5WN)): offset lex_filenum ss_type w_cnt words... p_cnt ptrs..."""
    fields = line.split(" | ", 1)[0].split()
    offset, w_cnt = fields[0], int(fields[3], 16)  # w_cnt is two hex digits
    words = [fields[4 + 2 * i].replace("_", " ") for i in range(w_cnt)]
    pos = 4 + 2 * w_cnt
    p_cnt = int(fields[pos])
    parents = []
    for i in range(p_cnt):
        symbol, target, target_pos = fields[pos + 1 + 4 * i: pos + 4 + 4 * i]
        if symbol in PARENT_POINTERS and target_pos == "n":
            parents.append("n" + target)
    return Synset("n" + offset, words, tuple(parents))


@functools.lru_cache(maxsize=2)
def load_nouns(wordnet_dir=None) -> dict:
    """All noun synsets by id. License lines of the file start with two spaces and are skipped."""
    path = Path(wordnet_dir or WORDNET_DIR) / "data.noun"
    if not path.is_file():
        raise XferError("WordNet 3.0 noun database not found", path=path, fix=INSTALL_FIX)
    nouns = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("  "):
                continue
            synset = parse_data_line(line)
            nouns[synset.wnid] = synset
    return nouns


def lookup(wnid: str, wordnet_dir=None, where=None) -> Synset:
    """The synset of an ImageNet id; `where` = (path, line) of the list that named it, for the error."""
    nouns = load_nouns(wordnet_dir)
    if wnid not in nouns:
        path, line = where or (None, None)
        raise XferError(f"synset {wnid} is not a WordNet 3.0 noun", path=path, line=line,
                        fix="ImageNet class ids are WordNet 3.0 noun ids (n + 8 digits); check the synsets file")
    return nouns[wnid]


def ancestors(wnid: str, wordnet_dir=None) -> set:
    """Every synset reachable upwards from `wnid` (itself included)."""
    nouns = load_nouns(wordnet_dir)
    seen, todo = set(), [wnid]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(nouns[current].parents)
    return seen


def is_manmade(wnid: str, wordnet_dir=None, where=None) -> bool:
    lookup(wnid, wordnet_dir, where)
    return not ancestors(wnid, wordnet_dir).isdisjoint(MANMADE_ROOTS)


def natural_classes(synsets, wordnet_dir=None, synsets_path=None) -> list:
    """Class indices (positions in `synsets`) of the natural classes: those not below any man-made root."""
    return [i for i, wnid in enumerate(synsets)
            if not is_manmade(wnid, wordnet_dir, where=(synsets_path, i + 1))]


def words(wnid: str, wordnet_dir=None) -> str:
    """The synset's words as in Caffe's synset_words.txt: `tench, Tinca tinca`."""
    return ", ".join(lookup(wnid, wordnet_dir).words)
