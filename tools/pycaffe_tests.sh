#!/usr/bin/env bash
# `make pycaffe-tests`: pycaffe's own unittest suite (python/caffe/test in the Caffe source the kit's build was made
# from), run by the venv's Python against the kit's installed pycaffe, as upstream runs it (unittest discover).
# Environment: VENV (default .venv). Exits with unittest's status.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
RECORD=$VENV/caffe-build.json
[ -f "$RECORD" ] || { echo "pycaffe-tests: no Caffe build record at $RECORD; run 'make setup' first" >&2; exit 2; }
src=$("$VENV/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["source_dir"])' "$RECORD")
tests=$src/python/caffe/test
if [ ! -d "$tests" ]; then
  echo "pycaffe-tests: $tests is missing (the source the build in $RECORD was made from)" >&2; exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Not from python/ in the source: its caffe package (no _caffe.so there) would shadow the kit's pycaffe.
# No bytecode: the cached source stays as fetched.
cd "$work"
module=$("$VENV/bin/python" -c 'import caffe; print(caffe.__file__)' 2>/dev/null)
echo "[pycaffe-tests] $module with tests from $tests" >&2
PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -m unittest discover -v -s "$tests" -t "$tests"
