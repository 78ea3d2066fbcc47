"""A linear probe per layer on a base net's frozen features for another task, and `xfer probe`.

Transfer AnB at layer n keeps base A's layers 1..n frozen and trains layers n+1..8 on task B. A logistic
regression (scikit-learn) on A's layer-n features of B's images is the cheapest such top: one linear layer instead
of 8 - n trained ones. Its accuracy per n is a prediction of the shape of the AnB curve made from one trained net,
where the paper trained one net per n (and per split); where the trained AnB / AnB+ nets have logs, the figure
draws them beside it.

The probe fits on the first `train_count` records of <DATASET>_train and scores on the first `valid_count` of
<DATASET>_valid (a fixed sample: the databases are shuffled once, by seed). Features are standardised; conv
layers with more than MAX_FEATURES values are average-pooled over space to a grid that fits (CaffeNet's conv1 has
290,400), the mini suite's fit whole. "data" (layer 0) is the probe on the preprocessed pixels themselves.
"""
import json
from pathlib import Path

import numpy as np

from . import activations
from ..errors import XferError
from ..nets import registry
from ..paths import write_text_atomic
from ..progress import say

MAX_FEATURES = 4096
PROBE_LAYERS = (activations.INPUT,) + registry.LAYERS
TRAIN_IMAGES, VALID_IMAGES = 1000, 500
REGULARISATION = 1.0  # scikit-learn's C (inverse L2 strength) on standardised features


def pooled(x, max_features=MAX_FEATURES) -> np.ndarray:
    """(N, features): conv maps (N, C, H, W) average-pooled over space to the largest g x g grid with
    C * g * g <= max_features (at least 1 x 1); inner-product outputs as they are."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4 or x[0].size <= max_features:
        return x.reshape(len(x), -1)
    channels, height, width = x.shape[1:]
    grid = max(1, int(np.sqrt(max_features / channels)))
    rows = np.array_split(np.arange(height), min(grid, height))
    cols = np.array_split(np.arange(width), min(grid, width))
    cells = [x[:, :, r[0]:r[-1] + 1, c[0]:c[-1] + 1].mean(axis=(2, 3)) for r in rows for c in cols]
    return np.stack(cells, axis=2).reshape(len(x), -1)


def fit_score(train_x, train_y, valid_x, valid_y, regularisation=REGULARISATION) -> float:
    """Accuracy on (valid_x, valid_y) of a logistic regression fit on standardised (train_x, train_y)."""
    from sklearn.linear_model import LogisticRegression  # lazy for start-up: scikit-learn loads scipy
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    if len(np.unique(train_y)) < 2:
        raise XferError("the probe's training images hold a single class",
                        fix="use more training images (--train-images) or another dataset")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=regularisation, max_iter=2000))
    with activations.one_blas_thread():
        model.fit(np.asarray(train_x, np.float64), train_y)
        return float(model.score(np.asarray(valid_x, np.float64), valid_y))



def chance(labels) -> float:
    """The accuracy of always answering the commonest class of the scored images."""
    return float(np.bincount(labels).max() / len(labels))


def dataset_databases(data_dir, dataset) -> tuple:
    """(train database, valid database) of a task: <data dir>/<dataset>_train and _valid."""
    found = []
    for part in ("train", "valid"):
        folder = Path(data_dir) / f"{dataset}_{part}"
        if not folder.is_dir():
            raise XferError(f"no dataset {folder.name} in {data_dir}", path=folder,
                            fix="name a task whose _train and _valid datasets `xfer db` built (e.g. half0B), "
                                "or pass --data-dir")
        found.append(activations.database_of(folder))
    return tuple(found)


def probe(folder, train_db, valid_db, layers=PROBE_LAYERS, train_count=TRAIN_IMAGES, valid_count=VALID_IMAGES,
          max_features=MAX_FEATURES) -> dict:
    """Probe accuracy per layer of the trained net in `folder` on a task's images; a JSON-able dict."""
    folder = Path(folder)
    train_images, train_y = activations.read_images(train_db, train_count)
    valid_images, valid_y = activations.read_images(valid_db, valid_count)
    say(f"probe: {folder.name}'s frozen features, fit on {len(train_y)} images of {train_db}, "
        f"scored on {len(valid_y)} of {valid_db}")
    train_acts = activations.activations(folder, train_images, layers)
    valid_acts = activations.activations(folder, valid_images, layers)
    accuracy = {}
    for layer in layers:
        accuracy[layer] = fit_score(pooled(train_acts[layer], max_features), train_y,
                                    pooled(valid_acts[layer], max_features), valid_y)
        say(f"   {layer}: {accuracy[layer]:.4f}")
    return {"base": folder.name, "train": str(train_db), "valid": str(valid_db), "train_images": len(train_y),
            "valid_images": len(valid_y), "layers": list(layers), "accuracy": accuracy,
            "chance": chance(valid_y), "max_features": max_features}


def trained_nets(results, base, dataset) -> list:
    """The nets of the tree to draw beside the probe: the transfers from `base` that train on `dataset` (AnB,
    AnB+) and the base net of `dataset` itself (baseB)."""
    names = []
    for net, folder in activations.described(results):
        if net.train_data != f"{dataset}_train":
            continue
        if net.family == "base" or (net.base == base and net.family in ("transfer", "transfer-ft")):
            names.append(folder.name)
    return names


def trained_families(results, base, dataset) -> dict:
    """summary.families of the trained AnB, AnB+ and baseB nets that have logs in `results` ({} when none)."""
    from ..report import summary  # lazy: the probe itself never reads logs
    names = trained_nets(results, base, dataset)
    numbers, _ = summary.load(results, names) if names else ({}, {})
    return summary.families({name: row for name, row in numbers.items() if row.get("top1") is not None})


def table(result) -> str:
    lines = [f"linear probe on {result['base']}'s frozen features: {result['train_images']} train / "
             f"{result['valid_images']} valid images (chance {result['chance']:.3f})"]
    lines += [f"{layer:>6}  {result['accuracy'][layer]:.4f}" for layer in result["layers"]]
    return "\n".join(lines)


def write(result, families, out_base) -> list:
    """out_base.json and the figure (.pdf, .png) of probe accuracy beside the trained curves; returns the paths."""
    from . import draw  # lazy for start-up: it loads matplotlib
    from ..report import figures
    out_base = Path(out_base)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_base.with_suffix(".json"), json.dumps(result, indent=1) + "\n")
    return [out_base.with_suffix(".json")] + figures.save(draw.probe_figure(result, families), out_base)
