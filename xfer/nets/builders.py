"""How a net is built: the Net record, the layer policies, the paper's mean rule and a builder per kind of net.

Every family's builder goes through `make_net`; xfer/nets/paper_families.py registers the paper's families with
these builders, and registry.py lists and looks nets up through those registrations.
"""
import re
from dataclasses import dataclass

from ..errors import XferError
from . import families, layout, suites
from .arch import ARCHS, Arch
from .suites import Schedule

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
FROZEN, TUNED, FRESH, RANDOM_FROZEN, TRAINED = "frozen", "tuned", "fresh", "random-frozen", "trained"
POLICIES = (FROZEN, TUNED, FRESH, RANDOM_FROZEN, TRAINED)
SPLITS = ("0", "1", "2", "3")
NS = tuple(range(1, 8))


@dataclass(frozen=True)
class Net:
    name: str
    suite: str
    family: str
    train_data: str
    val_data: str
    base: "str | None"
    policy: tuple
    n: "int | None"
    split: "str | None"
    schedule: Schedule
    num_classes: int
    arch: str = "caffenet"
    # The dataset whose mean.binaryproto the net subtracts (MEAN_RULE, set by make_net).
    mean_data: str = "whole_train"

    def layer_name(self, layer) -> str:
        """The layer's name in this net: `<name>-new` for fresh layers, so Caffe's copy-by-name skips them."""
        return f"{layer}-new" if self.policy[LAYERS.index(layer)] == FRESH else layer

    def copied_layers(self) -> list:
        return [layer for layer, pol in zip(LAYERS, self.policy) if pol in (FROZEN, TUNED)]

    def frozen_layers(self) -> list:
        return [layer for layer, pol in zip(LAYERS, self.policy) if pol in (FROZEN, RANDOM_FROZEN)]

    def final_snapshot(self) -> str:
        return layout.final_snapshot(self.schedule)

    def spec(self) -> Arch:
        """The network shape (widths, kernels, fillers, batch sizes, crop) this net renders with."""
        return ARCHS[self.arch]


def transfer_policy(n: int, first: str, rest: str = FRESH) -> tuple:
    """Layers 1..n get `first`, layers n+1..8 get `rest`."""
    return tuple(first if i < n else rest for i in range(len(LAYERS)))


def preserve_policy(n: int, extra: int) -> tuple:
    """The supplementary 'preserve' variant: 1..n frozen, `extra` further layers copied and tuned, the rest fresh."""
    if not (1 <= n and extra >= 1 and n + extra <= len(LAYERS)):
        raise XferError(f"preserve needs 1 <= n and extra >= 1 with n + extra <= 8 (got n={n}, extra={extra})")
    return tuple(FROZEN if i < n else TUNED if i < n + extra else FRESH for i in range(len(LAYERS)))



# The paper's mean rule (its results/ tree held 23 different imagenet_mean.binaryproto files): a net subtracts the
# mean of the training set its weights first learned on. A net with a base (transfer, transfer-ft, natman transfer,
# preserve) copies layers that learned on the base's mean, so it subtracts the base's training set's mean even
# though it trains on another set (transfer0B0A_1_3: half0B's). Every other net (the halves, netbase, nolearn,
# reduced-NNNN; reduced-1300 is whole_train) subtracts its own training set's mean.
MEAN_RULE = "the base's training set if the net has a base, else its own training set"


def mean_dataset(suite, train_data, base=None) -> str:
    """The dataset whose mean a net subtracts, by MEAN_RULE (the base is built from the grammar: it has no base)."""
    return parse_name(base, suite).train_data if base else train_data


def make_net(name, suite, family, train_data, val_data, base=None, policy=None, n=None, split=None,
             schedule=None) -> Net:
    """One registry entry from plain data; every family (and any new variant) is built through here."""
    spec = suites.get(suite)
    policy = tuple(policy or (TRAINED,) * len(LAYERS))
    bad = [p for p in policy if p not in POLICIES]
    if len(policy) != len(LAYERS) or bad:
        raise XferError(f"net {name}: policy must be 8 entries of {POLICIES}, got {policy}")
    if base is None and any(p in (FROZEN, TUNED) for p in policy):
        raise XferError(f"net {name}: layers are copied (frozen/tuned) but the net has no base")
    return Net(name=name, suite=suite, family=family, train_data=train_data, val_data=val_data, base=base,
               policy=policy, n=n, split=split, schedule=schedule or spec.schedule_for(family, val_data),
               num_classes=ARCHS[spec.arch].num_classes, arch=spec.arch,
               mean_data=mean_dataset(suite, train_data, base))


def half_net(suite, split, half) -> Net:
    family = "natman-base" if split == "natman" else "base"
    prefix = f"half{split}{half}"
    return make_net(prefix, suite, family, f"{prefix}_train", f"{prefix}_valid", split=split)


def transfer_net(suite, split, x, y, n, tuned) -> Net:
    ft = "-ft" if tuned else ""
    if split == "natman":
        name, family = f"transfer{ft}natman{x}{y}_1_{n}", "natman-transfer" + ("-ft" if tuned else "")
        base, data = f"halfnatman{x}", f"halfnatman{y}"
    else:
        name, base, data = f"transfer{ft}{split}{x}{split}{y}_1_{n}", f"half{split}{x}", f"half{split}{y}"
        family = ("selffer" if x == y else "transfer") + ft
    policy = transfer_policy(n, TUNED if tuned else FROZEN)
    return make_net(name, suite, family, f"{data}_train", f"{data}_valid", base=base, policy=policy, n=n,
                    split=split)


def reduced_net(suite, level) -> Net:
    data = "whole_train" if level == suites.get(suite).whole_level else f"reduced{level:04d}_train"
    return make_net(f"reduced-{level:04d}", suite, "reduced", data, "whole_valid")


def netbase_net(suite) -> Net:
    return make_net("netbase", suite, "netbase", "whole_train", "whole_valid")


def nolearn_net(suite, n) -> Net:
    return make_net(f"nolearn_1_{n}", suite, "nolearn", "whole_train", "whole_valid",
                    policy=transfer_policy(n, RANDOM_FROZEN, TRAINED), n=n)


def preserve_net(suite, split, x, y, n, extra) -> Net:
    """A supplementary 'preserve' net: base half{s}X, 1..n frozen, n+1..n+extra copied and tuned, rest fresh."""
    name = f"preserve{extra}_{split}{x}{split}{y}_1_{n}"
    return make_net(name, suite, "preserve", f"half{split}{y}_train", f"half{split}{y}_valid",
                    base=f"half{split}{x}", policy=preserve_policy(n, extra), n=n, split=split)



def reduced_checked(suite, level) -> Net:
    levels = suites.get(suite).reduced_levels
    if level not in levels:
        raise XferError(f"reduced-{level:04d} is not a level of the {suite} suite",
                        fix=f"levels: {', '.join(f'{v:04d}' for v in levels)}")
    return reduced_net(suite, level)



def parse_name(name, suite=None) -> Net:
    """A Net from the name grammar alone (works for any grammatical name, e.g. a folder of the paper's tree): the
    first registered family (xfer/nets/families.py) whose grammar takes the name builds it."""
    suite = suite or suites.default().name
    for pattern, build in families.grammars():
        m = pattern.fullmatch(name)
        if m:
            return build(m, suite)
    raise XferError(f"{name!r} is not a net name of the paper's grammar",
                    fix=f"names look like {families.examples()}")


def trained_half(net) -> "str | None":
    """"A" or "B": the half (random or natman) a net trains on; None for nets on the whole or a reduced set."""
    found = re.fullmatch(r"half(?:[0-3]|natman)([AB])_train", net.train_data)
    return found[1] if found else None


def reduced_level(net) -> int:
    """Images per class a reduced-NNNN net trains on (its NNNN)."""
    return int(re.fullmatch(r"reduced-(\d{4})", net.name)[1])


def preserved_layers(net) -> int:
    """How many layers past 1..n a preserve net copies and fine-tunes (its `preserve{k}_` prefix)."""
    return net.policy.count(TUNED)
