#!/usr/bin/env bash
# `make notebook`: Jupyter Notebook from .venv on 127.0.0.1, serving the repository, with the kit's kernel ("xfer",
# installed by `make setup`), opening plots/transfer_plots.ipynb. Prints the notebook's URL with its token.
#   NOTEBOOK_PORT  first port to try (default 8888; the next free one up to +50 is taken)
#   JUPYTER_TOKEN  the token (default: a new random one per start)
#   XFER_RESULTS   the results tree the notebook reads (default: it looks for one; see the notebook's first cell)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=$ROOT/.venv
NOTEBOOK=plots/transfer_plots.ipynb

if [ ! -x "$VENV/bin/jupyter-notebook" ] || [ ! -f "$VENV/share/jupyter/kernels/xfer/kernel.json" ]; then
  echo "notebook: Jupyter or the kit's kernel is missing from $VENV; run: make setup" >&2
  exit 1
fi
# The kernel runs in plots/: a relative XFER_RESULTS is made absolute here (from the directory make runs in).
if [ -n "${XFER_RESULTS:-}" ]; then
  export XFER_RESULTS=$(realpath -m -- "$XFER_RESULTS")
fi

free_port() {
  "$VENV/bin/python" - "$1" <<'PY'
import socket, sys
first = int(sys.argv[1])
for port in range(first, first + 51):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(port)
        sys.exit(0)
sys.exit(f"notebook: no free port in {first}..{first + 50} on 127.0.0.1; set NOTEBOOK_PORT to another range")
PY
}

port=$(free_port "${NOTEBOOK_PORT:-8888}")
# The token goes through the environment, not argv, so `ps` does not show it.
export JUPYTER_TOKEN=${JUPYTER_TOKEN:-$("$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(24))')}
args=(--ip=127.0.0.1 --port="$port" --ServerApp.port_retries=0 --ServerApp.root_dir="$ROOT")
# A Jupyter server refuses to start as root unless told; the kit's supported setup runs as root.
[ "$(id -u)" = 0 ] && args+=(--allow-root)
# Open a browser only where one can show (a desktop session); otherwise Python's webbrowser may start a text browser.
[ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] || args+=(--no-browser)

cd "$ROOT"
echo "notebook: open http://127.0.0.1:$port/notebooks/$NOTEBOOK?token=$JUPYTER_TOKEN"
echo "notebook: kernel \"Python 3 (xfer)\"; stop with Control-C (twice to skip the question)"
exec "$VENV/bin/jupyter-notebook" "${args[@]}" "$NOTEBOOK"
