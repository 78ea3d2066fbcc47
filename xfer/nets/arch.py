"""Network shapes the registry's nets render with: the paper's CaffeNet and the mini suite's scaled CaffeNet.

Both have the same layer sequence (conv1 relu pool LRN, conv2 relu pool LRN, conv3, conv4, conv5 relu pool,
fc6 relu dropout, fc7 relu dropout, fc8), so one set of templates renders both; only the numbers differ.
"""
import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class WeightLayer:
    num_output: int
    kernel: int = 0          # 0 for inner-product layers
    stride: int = 1
    pad: int = 0
    group: int = 1
    weight_filler: str = "gaussian"
    weight_std: float = 0.01  # used by gaussian fillers only
    bias: float = 0.0


@dataclass(frozen=True)
class Arch:
    name: str
    net_name: str             # the prototxt's `name:`
    channels: int             # image channels in the database
    image_size: int           # side of the stored (square) images
    crop: int                 # crop side (0: no crop)
    train_mirror: bool
    train_batch: int
    val_batch: int
    num_classes: int          # outputs of fc8 (the paper keeps 1000 even for the 500-class halves)
    layers: tuple             # 8 WeightLayer, in registry.LAYERS order
    pool_kernel: int = 3
    pool_stride: int = 2
    lrn_local_size: int = 5
    lrn_alpha: float = 0.0001
    lrn_beta: float = 0.75
    dropout_ratio: float = 0.5
    scale: float = 1.0        # transform_param scale after mean subtraction (the paper: none)

    @property
    def input_size(self) -> int:
        """Side of the images the first layer sees."""
        return self.crop or self.image_size


CAFFENET = Arch(
    name="caffenet", net_name="CaffeNet", channels=3, image_size=256, crop=227, train_mirror=True,
    train_batch=256, val_batch=50, num_classes=1000,
    layers=(
        WeightLayer(96, kernel=11, stride=4, bias=0.0),
        WeightLayer(256, kernel=5, pad=2, group=2, bias=1.0),
        WeightLayer(384, kernel=3, pad=1, bias=0.0),
        WeightLayer(384, kernel=3, pad=1, group=2, bias=1.0),
        WeightLayer(256, kernel=3, pad=1, group=2, bias=1.0),
        WeightLayer(4096, weight_std=0.005, bias=1.0),
        WeightLayer(4096, weight_std=0.005, bias=1.0),
        WeightLayer(1000, weight_std=0.01, bias=0.0),
    ),
)

# Scaled for 28x28 grayscale Fashion-MNIST on a CPU: the same 8 weight layers and layer types (LRN, pooling,
# dropout, grouped convs). conv1 has stride 2 like CaffeNet's strided conv1, so conv2 runs at 7x7 and conv3-5 at
# 3x3: 35 ms per batch of 64 on one core, a third of a stride-1 conv1 (97 ms), for the same accuracy per second
# (base B 86.9% after 1000 iterations in 37 s, against 85.9% after 600 in 70 s with stride 1).
# Whole 28x28 images, no mirror: 24x24 crops + mirror learned slower (78% on B after 750 iterations). MSRA fillers
# train without a warm-up but need inputs of unit scale: pixels are scaled by 1/256 after mean subtraction (raw
# 0..255 inputs diverged to NaN); the paper's gaussian(0.01) did not start learning within 300 iterations.
MINI = Arch(
    name="mini", net_name="MiniCaffeNet", channels=1, image_size=28, crop=0, train_mirror=False,
    train_batch=64, val_batch=100, num_classes=10, scale=0.00390625,
    layers=(
        WeightLayer(16, kernel=5, stride=2, pad=2, weight_filler="msra", bias=0.0),
        WeightLayer(32, kernel=5, pad=2, group=2, weight_filler="msra", bias=0.1),
        WeightLayer(48, kernel=3, pad=1, weight_filler="msra", bias=0.0),
        WeightLayer(48, kernel=3, pad=1, group=2, weight_filler="msra", bias=0.1),
        WeightLayer(32, kernel=3, pad=1, group=2, weight_filler="msra", bias=0.1),
        WeightLayer(128, weight_filler="msra", bias=0.1),
        WeightLayer(128, weight_filler="msra", bias=0.1),
        WeightLayer(10, weight_filler="gaussian", weight_std=0.01, bias=0.0),
    ),
)

# The glyph suite's net: the mini shape (28x28 grey inputs, the same widths) with 200 outputs, one per glyph class.
GLYPHS = dataclasses.replace(MINI, name="glyphs", net_name="GlyphCaffeNet", num_classes=200,
                             layers=MINI.layers[:7] + (dataclasses.replace(MINI.layers[7], num_output=200),))

ARCHS = {arch.name: arch for arch in (CAFFENET, MINI, GLYPHS)}
