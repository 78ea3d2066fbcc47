"""Forward data-only nets with pycaffe and save every batch: run in a subprocess by tests/test_data_threads.py, once
per Caffe build and CAFFE_DATA_THREADS value (the patched Caffe reads the variable once per process).

    python tests/data_batches.py OUT.npz SEED BATCHES NET.prototxt ...

Writes, for net k and batch b, arrays `k_b_data` and `k_b_label` (float32, as the layer's tops hold them).
Which pycaffe runs is the interpreter's: PYTHONPATH before the venv's own picks another build.
"""
import sys

import numpy as np


def forward_batches(caffe, prototxt: str, seed: int, batches: int) -> dict:
    # Seeded before the net exists: the transformer's and the shuffle's RNGs are seeded from Caffe's at set-up.
    caffe.set_random_seed(seed)
    net = caffe.Net(prototxt, caffe.TRAIN)
    out = {}
    for b in range(batches):
        net.forward()
        out[f"{b}_data"] = net.blobs["data"].data.copy()
        out[f"{b}_label"] = net.blobs["label"].data.copy()
    return out


def main(argv) -> None:
    out, seed, batches, nets = argv[0], int(argv[1]), int(argv[2]), argv[3:]
    import caffe
    caffe.set_mode_cpu()
    arrays = {}
    for k, prototxt in enumerate(nets):
        for name, value in forward_batches(caffe, prototxt, seed, batches).items():
            arrays[f"{k}_{name}"] = value
    np.savez(out, caffe_file=np.array(caffe.__file__), **arrays)


if __name__ == "__main__":
    main(sys.argv[1:])
