"""Linear CKA (Kornblith et al. 2019, "Similarity of neural network representations revisited") between nets,
layer by layer, on one probe set of images, and `xfer similarity`.

For activations X (n x p) and Y (n x q) of the same n images, centred per feature:
    CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)
              = <K, L>_F / (||K||_F ||L||_F)   with the centred Gram matrices K = X X^T, L = Y Y^T.
The two forms are equal; the code takes whichever has the smaller matrices. CKA is 1 for a net against itself,
invariant to orthogonal transforms and isotropic scaling of either side (so to a permutation of the units), and
not to arbitrary invertible linear maps. A layer whose units are all constant on the probe set (dead) has no
defined CKA: NaN.
"""
import csv
import io
import json
from pathlib import Path

import numpy as np

from . import activations
from ..errors import XferError
from ..nets import registry
from ..paths import write_text_atomic
from ..progress import say


def centred(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x - x.mean(axis=0, keepdims=True)


def linear_cka(x, y) -> float:
    """Linear CKA between two activation matrices of the same images (rows)."""
    x, y = centred(np.reshape(x, (len(x), -1))), centred(np.reshape(y, (len(y), -1)))
    if len(x) != len(y):
        raise ValueError(f"CKA needs the same images on both sides ({len(x)} and {len(y)} rows)")
    if x.shape[1] + y.shape[1] > 2 * len(x):  # wide layers: the n x n Gram matrices are the smaller ones
        gram_x, gram_y = x @ x.T, y @ y.T
        cross, norm_x, norm_y = np.vdot(gram_x, gram_y), np.linalg.norm(gram_x), np.linalg.norm(gram_y)
    else:
        cross = np.linalg.norm(y.T @ x) ** 2
        norm_x, norm_y = np.linalg.norm(x.T @ x), np.linalg.norm(y.T @ y)
    if norm_x == 0 or norm_y == 0:
        return float("nan")
    return float(cross / (norm_x * norm_y))


def label_of(name) -> str:
    """A net's name with its role in the paper's terms where the registry knows it: "half0A (base A)",
    "transfer0A0B_1_3 (AnB n=3)"."""
    from ..report import summary  # lazy: only the figure labels need the summary's series names
    net = registry.describe(name)
    if net is None:
        return name
    if net.family == "base":
        return f"{name} (base {registry.trained_half(net)})"
    where = summary.classify(name)
    return f"{name} ({where[0]} n={where[1]})" if where and where[1] else name


def compare(folders, layers=registry.LAYERS, probe_db=None, count=activations.DEFAULT_IMAGES) -> dict:
    """CKA of every net against the first (the reference), at each layer, on the first `count` images of
    `probe_db` (default: the reference's validation database). Returns a JSON-able dict."""
    folders = [Path(f) for f in folders]
    if len(folders) < 2:
        raise XferError("similarity needs a reference net and at least one net to compare with it",
                        fix="name two or more nets, the reference first: xfer similarity half0B half0A ...")
    probe_db = Path(probe_db) if probe_db else activations.net_val_database(folders[0])
    images, _ = activations.read_images(probe_db, count)
    say(f"similarity: {len(images)} images of {probe_db}, reference {folders[0].name}")
    reference = activations.activations(folders[0], images, layers)
    rows = {}
    for folder in folders[1:]:
        acts = activations.activations(folder, images, layers)
        with activations.one_blas_thread():
            rows[folder.name] = {layer: linear_cka(reference[layer], acts[layer]) for layer in layers}
        say(f"   {folder.name}: " + " ".join(f"{layer} {rows[folder.name][layer]:.3f}" for layer in layers))
    return {"reference": folders[0].name, "probe": str(probe_db), "images": len(images), "layers": list(layers),
            "cka": rows}


def to_csv(result) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["net", "reference"] + result["layers"])
    for name, row in result["cka"].items():
        writer.writerow([name, result["reference"]] + [f"{row[layer]:.6f}" for layer in result["layers"]])
    return buf.getvalue()


def table(result) -> str:
    width = max(len(name) for name in result["cka"]) + 2
    lines = [f"linear CKA with {result['reference']} on {result['images']} images of {result['probe']}",
             "net".ljust(width) + "".join(layer.rjust(7) for layer in result["layers"])]
    for name, row in result["cka"].items():
        lines.append(name.ljust(width) + "".join(f"{row[layer]:7.3f}" for layer in result["layers"]))
    return "\n".join(lines)


def write(result, out_base) -> list:
    """out_base.json, .csv and the heatmap (.pdf, .png); returns the paths."""
    from . import draw  # lazy for start-up: it loads matplotlib
    from ..report import figures
    out_base = Path(out_base)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_base.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    write_text_atomic(out_base.with_suffix(".csv"), to_csv(result))
    labels = {name: label_of(name) for name in result["cka"]}
    fig = draw.cka_heatmap(result, labels)
    return [out_base.with_suffix(".json"), out_base.with_suffix(".csv")] + figures.save(fig, out_base)
