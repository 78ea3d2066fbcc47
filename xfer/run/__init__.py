"""Stage 5, training: weight surgery, one net with the real `caffe train`, the state of a net folder, and the
runner that trains the graph through a backend (local slots/GPUs or SLURM)."""
