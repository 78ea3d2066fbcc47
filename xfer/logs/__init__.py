"""Stage 6, the logs: Caffe training logs (2014 and Caffe 1.0 formats, plain or gzip) -> per-net arrays, parsed
in parallel and cached; the fast whole-buffer scanners and the exact per-line path."""
