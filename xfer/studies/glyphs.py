"""Glyphs: a miniature of many classes (200 letters of 10 scripts), rendered from Debian's font packages, for a
suite far below its ceiling (Fashion-MNIST's 5-class halves reach 87-97%; the paper's 500-class halves 62%).

A class is one letter of one script; its images are that letter drawn by one of several fonts that hold it (at most
MAX_FONTS, at least MIN_FONTS), each image with its own random affine distortion, stroke width, contrast, blur,
noise and clutter (strokes and a fragment of another letter). The tree is what `xfer imagenet-lists` reads:
<root>/{train,val}/NNN_<script>_<codepoint>/<n>.png, 28x28 grey. Class folders sort in class-id order.

Deterministic from a seed: each image draws from its own RandomState([seed, part, class, index]), so the tree is
the same in any order and on any number of workers, given the same font files (fonts-noto-core, fonts-dejavu-core,
fonts-dejavu-extra, fonts-freefont-ttf; `make setup` installs them). Nothing is downloaded.

The natman analogue: the two families of scripts. A ("natural"): alphabets of Greek descent and their neighbours
(Latin, Greek, Cyrillic, Armenian, Georgian); B ("man-made"): Brahmic abugidas (Devanagari, Bengali, Gujarati,
Tamil, Thai). The families differ in stroke vocabulary (headlines, loops, vowel signs) as natural and man-made
ImageNet classes differ in texture and shape.
"""
import functools
import os
import unicodedata
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ..errors import XferError

FONT_DIR = Path("/usr/share/fonts/truetype")
PACKAGES = "fonts-noto-core fonts-dejavu-core fonts-dejavu-extra fonts-freefont-ttf"
SIDE, CANVAS = 28, 56        # stored side; drawn at twice that and reduced (anti-aliased strokes)
FONT_PX = 34                 # em size on the canvas before the random scale
PER_SCRIPT = 20              # letters per script: 10 scripts x 20 = 200 classes, 100 per family
MIN_FONTS, MAX_FONTS = 4, 6  # fonts per class: enough to vary, the same cap for rich (Latin) and poor scripts
TRAIN_PER_CLASS, VAL_PER_CLASS = 250, 50
PARTS = {"train": 0, "val": 1}
FAMILIES = ("alphabets", "brahmic")
LATIN_FONTS = ("dejavu/DejaVuSans*.ttf", "dejavu/DejaVuSerif*.ttf", "noto/NotoSans-*.ttf", "noto/NotoSerif-*.ttf",
               "freefont/Free*.ttf")


@dataclass(frozen=True)
class Script:
    name: str
    family: str
    first: int               # code point range of candidate letters
    last: int
    fonts: tuple             # glob patterns below FONT_DIR
    skip: str = ""           # letters left out: homoglyphs (of another script's letters, or at 28x28 of a letter of
    #                          their own script: Thai ฃ/ซ), so no two classes draw alike


SCRIPTS = (
    Script("latin", "alphabets", 0x61, 0x7A, LATIN_FONTS),
    Script("greek", "alphabets", 0x3B1, 0x3C9, LATIN_FONTS, skip="κορςτ"),
    Script("cyrillic", "alphabets", 0x431, 0x44F, LATIN_FONTS, skip="еорсух"),
    Script("armenian", "alphabets", 0x561, 0x586, ("dejavu/DejaVu*.ttf", "noto/Noto*Armenian-*.ttf",
                                                   "freefont/Free*.ttf"), skip="օ"),
    Script("georgian", "alphabets", 0x10D0, 0x10F0, ("dejavu/DejaVu*.ttf", "noto/Noto*Georgian-*.ttf",
                                                     "freefont/Free*.ttf")),
    Script("devanagari", "brahmic", 0x915, 0x939, ("noto/Noto*Devanagari-*.ttf", "freefont/Free*.ttf")),
    Script("bengali", "brahmic", 0x995, 0x9B9, ("noto/Noto*Bengali-*.ttf", "freefont/Free*.ttf")),
    Script("gujarati", "brahmic", 0xA95, 0xAB9, ("noto/Noto*Gujarati-*.ttf", "freefont/Free*.ttf")),
    Script("tamil", "brahmic", 0xB95, 0xBB9, ("noto/Noto*Tamil*-*.ttf", "freefont/Free*.ttf")),
    Script("thai", "brahmic", 0xE01, 0xE2E, ("noto/Noto*Thai-*.ttf", "freefont/Free*.ttf"), skip="ฃฅฏซช"),
)


@dataclass(frozen=True)
class GlyphClass:
    script: str
    family: str
    char: str
    fonts: tuple             # font file paths, sorted

    @property
    def folder(self) -> str:
        return f"{self.script}_{ord(self.char):04x}"


@functools.lru_cache(maxsize=None)
def cmap_of(path) -> frozenset:
    from fontTools.ttLib import TTFont  # matplotlib's dependency; read only here
    with TTFont(path, lazy=True) as font:
        return frozenset(font.getBestCmap() or {})


def script_fonts(script, font_dir) -> list:
    return sorted({str(p) for pattern in script.fonts for p in Path(font_dir).glob(pattern)})


def letters(script) -> list:
    chars = [chr(c) for c in range(script.first, script.last + 1)]
    return [c for c in chars if unicodedata.category(c) in ("Ll", "Lo") and c not in script.skip]


@functools.lru_cache(maxsize=4)
def classes(font_dir=FONT_DIR, seed=0) -> tuple:
    """The 200 classes in class-id order: per script, its first PER_SCRIPT letters held by >= MIN_FONTS fonts,
    each with MAX_FONTS of those fonts drawn by the seed (sorted first, so the choice depends on the files alone)."""
    out = []
    rng = np.random.RandomState([seed, 7])
    for script in SCRIPTS:
        fonts = script_fonts(script, font_dir)
        kept = []
        for char in letters(script):
            holding = [f for f in fonts if ord(char) in cmap_of(f)]
            if len(holding) >= MIN_FONTS:
                picked = sorted(holding) if len(holding) <= MAX_FONTS else \
                    sorted(rng.choice(holding, MAX_FONTS, replace=False).tolist())
                kept.append(GlyphClass(script.name, script.family, char, tuple(picked)))
            if len(kept) == PER_SCRIPT:
                break
        if len(kept) < PER_SCRIPT:
            raise XferError(f"glyphs: the {script.name} script has {len(kept)} letters held by {MIN_FONTS} fonts, "
                            f"{PER_SCRIPT} are needed", path=Path(font_dir),
                            fix=f"apt-get install {PACKAGES} (make setup installs them)")
        out += kept
    return tuple(out)


def class_folder(label, cls) -> str:
    return f"{label:03d}_{cls.folder}"


def class_names(font_dir=FONT_DIR) -> tuple:
    """Readable names, in class-id order: `latin a`, `thai ก`."""
    return tuple(f"{c.script} {c.char}" for c in classes(font_dir))


def natural_classes(font_dir=FONT_DIR) -> tuple:
    """Class ids of family A (the alphabets): halfnatmanA, the "natural" half of the analogue."""
    return tuple(i for i, c in enumerate(classes(font_dir)) if c.family == FAMILIES[0])


@functools.lru_cache(maxsize=64)
def font(path) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, FONT_PX)


def draw_letter(canvas, char, path, stroke=0, fill=255, offset=(0.0, 0.0)) -> None:
    ImageDraw.Draw(canvas).text((CANVAS / 2 + offset[0], CANVAS / 2 + offset[1]), char, fill=fill,
                                font=font(path), anchor="mm", stroke_width=stroke, stroke_fill=fill)


def affine(image, rng) -> Image.Image:
    """Rotation +-8 degrees, scale 0.9..1.1, shear +-0.15, shift +-2 canvas pixels about the centre."""
    angle, scale = np.deg2rad(rng.uniform(-8, 8)), rng.uniform(0.9, 1.1)
    shear, shift = rng.uniform(-0.15, 0.15), rng.uniform(-2, 2, 2)
    c, s = np.cos(angle), np.sin(angle)
    forward = scale * np.array([[c, -s], [s, c]]) @ np.array([[1, shear], [0, 1]])
    inverse = np.linalg.inv(forward)
    centre = np.array([CANVAS / 2, CANVAS / 2])
    offset = centre - inverse @ (centre + shift)
    coeffs = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    return image.transform(image.size, Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BILINEAR)


def clutter(canvas, rng, all_classes) -> None:
    """A fragment of another letter pushed towards an edge, and 0-1 strokes across the image, both dimmer."""
    other = all_classes[rng.randint(len(all_classes))]
    edge = rng.choice([-1, 1], 2) * rng.uniform(26, 34, 2)
    draw_letter(canvas, other.char, other.fonts[rng.randint(len(other.fonts))], 0,
                fill=int(rng.uniform(60, 150)), offset=tuple(edge))
    pen = ImageDraw.Draw(canvas)
    for _ in range(rng.randint(2)):
        points = [tuple(rng.uniform(0, CANVAS, 2)) for _ in range(2)]
        pen.line(points, fill=int(rng.uniform(40, 120)), width=int(rng.randint(1, 3)))


def render(cls, index, part, seed, all_classes) -> np.ndarray:
    """One image of a class: 28x28 uint8, white-ish letter on a dark, noisy ground."""
    label = all_classes.index(cls)
    rng = np.random.RandomState([seed, PARTS[part], label, index])
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    draw_letter(canvas, cls.char, cls.fonts[rng.randint(len(cls.fonts))], int(rng.randint(0, 3)))
    canvas = affine(canvas, rng)
    clutter(canvas, rng, all_classes)
    canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.8)))
    small = np.asarray(canvas.resize((SIDE, SIDE), Image.Resampling.BOX), dtype=np.float32) / 255
    ground, ink = rng.uniform(0, 50), rng.uniform(170, 255)
    pixels = ground + (ink - ground) * small + rng.normal(0, rng.uniform(3, 12), small.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_class(job) -> int:
    root, part, label, count, seed, font_dir = job
    all_classes = classes(font_dir, seed)
    cls = all_classes[label]
    folder = Path(root) / part / class_folder(label, cls)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(render(cls, i, part, seed, all_classes)).save(folder / f"{part}_{i:04d}.png",
                                                                       compress_level=1)
    return count


def write_image_tree(root, seed=0, per_class=(TRAIN_PER_CLASS, VAL_PER_CLASS), font_dir=FONT_DIR,
                     workers=None) -> dict:
    """Every image as PNG under root/{train,val}/<class>/; a part already written completely (same counts and seed)
    is kept. Returns {part: images}."""
    root, counts = Path(root), {}
    n_classes = len(classes(font_dir, seed))
    for part, count in zip(PARTS, per_class):
        done, stamp = root / part / ".complete", f"{n_classes * count} seed={seed}"
        if not (done.exists() and done.read_text().strip() == stamp):
            jobs = [(str(root), part, label, count, seed, str(font_dir)) for label in range(n_classes)]
            with ProcessPoolExecutor(workers or os.cpu_count() or 1) as pool:
                list(pool.map(write_class, jobs, chunksize=4))  # list(): re-raise a worker's error here
            done.write_text(stamp + "\n")  # written last: an interrupted tree is redone, never half-used
        counts[part] = n_classes * count
    return counts
