"""`python -m xfer.cli ...`: the `xfer` command run by this Python (how the runner and SLURM jobs start trainers)."""
import sys

from . import main

sys.exit(main())
