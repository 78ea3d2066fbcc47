#! /bin/bash
# The original study's script name, kept as a thin wrapper: makes every derivative list (random halves 0-3,
# natural/man-made halves, reduced volumes) from ilsvrc12/data/whole_{train,valid}/files.txt and checks each
# against the paper's md5 sums. Extra arguments go to `xfer splits` (e.g. --data-dir DIR, --synsets FILE).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
exec "$root/.venv/bin/xfer" splits --verify "$@"
