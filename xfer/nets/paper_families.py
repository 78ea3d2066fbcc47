"""The paper's net families and figure series, registered in xfer/nets/families.py (one entry each).

Registration order is meaningful: the families' in `xfer nets` (base nets before the nets that need them) and in
the names a grammar error lists; the series' in the comparison table's rows.
"""
from . import builders as b
from .families import Family, Series, register

# The natman halves as the paper plots them: by target task. halfnatmanA is the natural half, B the man-made one.
NATMAN_TARGET = {"A": "natural", "B": "man-made"}
ONTO_BASE = ("baseB", 0)  # Figure 2's treatments are read against the mean of the random-half bases

# ---- series: how each line is named, drawn and compared. The paper's Figure 2 encoding: white circles baseB,
# dark / light blue circles BnB / BnB+, dark / light red diamonds AnB / AnB+, each treatment shifted a little
# sideways so the points of one n do not hide each other.
for series in (
        Series("baseB", "baseB", dict(marker="o", color="white", edge="black", shift=0.0, label="baseB"), ONTO_BASE),
        Series("BnB", "selffer BnB", dict(marker="o", color="#1f1fa8", edge="#1f1fa8", shift=-0.15,
                                          label="selffer BnB"), ONTO_BASE),
        Series("BnB+", "selffer BnB+", dict(marker="o", color="#7fb2f0", edge="#4f82c0", shift=-0.05,
                                            label="selffer BnB$^+$"), ONTO_BASE),
        Series("AnB", "transfer AnB", dict(marker="D", color="#a81f1f", edge="#a81f1f", shift=0.05,
                                           label="transfer AnB"), ONTO_BASE),
        Series("AnB+", "transfer AnB+", dict(marker="D", color="#f08c8c", edge="#c05c5c", shift=0.15,
                                             label="transfer AnB$^+$"), ONTO_BASE),
        Series("natman:natural", "man-made -> natural",
               dict(color="#2c7a2c", marker="o", label="transfer {B} $\\to$ {A}"), ("natman:natural", 0)),
        Series("natman:man-made", "natural -> man-made",
               dict(color="#c07a10", marker="s", label="transfer {A} $\\to$ {B}"), ("natman:man-made", 0)),
        Series("netbase", "netbase", {}, ("netbase", 0)),
        Series("random", "random (nolearn)", dict(color="#5a2ca0", label="random, untrained filters"),
               ("netbase", 0)),
        # "whole": the reduced-volume level that is the whole training set (the last of a suite's levels)
        Series("reduced", "reduced (per class)", dict(color="#1f1fa8", label="base net on a reduced dataset"),
               ("reduced", "whole")),
        Series("natman:natural+", "man-made -> natural, fine-tuned"),
        Series("natman:man-made+", "natural -> man-made, fine-tuned"),
        Series("preserve", "1..n frozen, k more tuned")):  # preserve1, preserve2, ...: k layers past n tuned
    register(series)


def on_layer(label):
    """Placement at the net's layer n (0 for a net without one, a base)."""
    return lambda net: (label, net.n or 0)


def natman_place(net):
    target = NATMAN_TARGET[b.trained_half(net)]
    plus = "+" if net.family.endswith("-ft") else ""
    return f"natman:{target}{plus}", net.n or 0


def random_halves(suite, tuned):
    """The random-half transfer nets of a suite, frozen or fine-tuned: the transfers and the selffers (X == Y) of
    its pairs, interleaved in the paper's (split, pair, n) order, so the transfer families list their selffer
    siblings' nets too and the selffer families list none of their own."""
    spec = b.suites.get(suite)
    splits = spec.ft_splits if tuned else b.SPLITS
    return [b.transfer_net(suite, s, xy[0], xy[1], n, tuned) for s in splits for xy in spec.pairs for n in b.NS]


HALF = r"([0-3])([AB])\1"  # split s and half X of `transfer{s}{X}{s}{Y}`
for family in (
        Family("base", on_layer("baseB"), r"half([0-3])([AB])", lambda m, s: b.half_net(s, m[1], m[2]),
               lambda suite: [b.half_net(suite, s, h) for s in b.SPLITS for h in "AB"], "half0A"),
        Family("natman-base", natman_place, r"halfnatman([AB])", lambda m, s: b.half_net(s, "natman", m[1]),
               lambda suite: [b.half_net(suite, "natman", h) for h in "AB"], "halfnatmanB"),
        Family("netbase", on_layer("netbase"), r"netbase", lambda m, s: b.netbase_net(s),
               lambda suite: [b.netbase_net(suite)], "netbase"),
        Family("reduced", lambda net: ("reduced", b.reduced_level(net)), r"reduced-(\d{4})",
               lambda m, s: b.reduced_checked(s, int(m[1])),
               lambda suite: [b.reduced_net(suite, level) for level in b.suites.get(suite).reduced_levels],
               "reduced-0050"),
        Family("nolearn", on_layer("random"), r"nolearn_1_([1-7])", lambda m, s: b.nolearn_net(s, int(m[1])),
               lambda suite: [b.nolearn_net(suite, n) for n in b.NS], "nolearn_1_3"),
        Family("selffer", on_layer("BnB"), rf"transfer{HALF}\2_1_([1-7])",
               lambda m, s: b.transfer_net(s, m[1], m[2], m[2], int(m[3]), False)),
        Family("transfer", on_layer("AnB"), rf"transfer{HALF}((?!\2)[AB])_1_([1-7])",
               lambda m, s: b.transfer_net(s, m[1], m[2], m[3], int(m[4]), False),
               lambda suite: random_halves(suite, False), "transfer0A0B_1_3"),
        Family("selffer-ft", on_layer("BnB+"), rf"transfer-ft{HALF}\2_1_([1-7])",
               lambda m, s: b.transfer_net(s, m[1], m[2], m[2], int(m[3]), True)),
        Family("transfer-ft", on_layer("AnB+"), rf"transfer-ft{HALF}((?!\2)[AB])_1_([1-7])",
               lambda m, s: b.transfer_net(s, m[1], m[2], m[3], int(m[4]), True),
               lambda suite: random_halves(suite, True), "transfer-ft1B1A_1_5"),
        Family("natman-transfer", natman_place, r"transfernatman([AB])([AB])_1_([1-7])",
               lambda m, s: b.transfer_net(s, "natman", m[1], m[2], int(m[3]), False),
               lambda suite: [b.transfer_net(suite, "natman", x, y, n, False) for x, y in ("AB", "BA") for n in b.NS],
               "transfernatmanAB_1_2"),
        Family("natman-transfer-ft", natman_place, r"transfer-ftnatman([AB])([AB])_1_([1-7])",
               lambda m, s: b.transfer_net(s, "natman", m[1], m[2], int(m[3]), True)),
        # the supplementary variant: parsed from its name (`xfer nets` does not list it), plotted by k
        Family("preserve", lambda net: (f"preserve{b.preserved_layers(net)}", net.n),
               r"preserve([1-7])_([0-3])([AB])\2([AB])_1_([1-7])",
               lambda m, s: b.preserve_net(s, m[2], m[3], m[4], int(m[5]), int(m[1])))):
    register(family)
