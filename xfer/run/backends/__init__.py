"""Where `xfer run` trains the graph: local slots/GPUs or SLURM jobs."""
