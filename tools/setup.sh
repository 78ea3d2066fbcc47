#!/usr/bin/env bash
# `make setup`: everything the kit needs, from nothing, on Debian 12 as root. Idempotent; a warm run only checks.
#   1. Debian packages (tools/apt-packages.txt)       3. real Caffe from source (tools/build_caffe.sh, cached)
#   2. the venv .venv with the kit + pinned deps       4. Caffe linked into the venv (binaries, pycaffe, build record)
#      and its Jupyter kernel "xfer"
set -Eeuo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-python3}
VENV=$ROOT/.venv
CACHE=${XFER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xfer}
LOGDIR=$CACHE/logs
mkdir -p "$LOGDIR"

STEP=start; LOG=$LOGDIR/setup.log
begin() { STEP=$1; LOG=$LOGDIR/$2.log; : >"$LOG"; echo "[setup] $STEP" >&2; }
trap 'echo "setup: step \"$STEP\" failed. Read the log: $LOG" >&2; tail -n 20 "$LOG" 2>/dev/null | sed "s/^/    /" >&2' ERR
quiet() { "$@" >>"$LOG" 2>&1; }

install_apt_packages() {
  mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^\s*$/d' tools/apt-packages.txt)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  begin "apt-get install ${missing[*]}" apt
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}" >&2
    return 1
  fi
  quiet apt-get update
  DEBIAN_FRONTEND=noninteractive quiet apt-get install -y --no-install-recommends "${missing[@]}"
}

install_venv() {
  [ -x "$VENV/bin/python" ] || { begin "create venv $VENV" venv; quiet "$PYTHON" -m venv "$VENV"; }
  # Re-install only when pyproject.toml changed: keeps a warm `make setup` fast.
  local stamp="$VENV/.deps-$(sha256sum pyproject.toml | cut -c1-16)"
  [ -f "$stamp" ] && return
  begin "pip install the kit and its pinned dependencies" pip
  quiet "$VENV/bin/python" -m pip install --upgrade pip
  quiet "$VENV/bin/python" -m pip install -e ".[test]"
  rm -f "$VENV"/.deps-*; touch "$stamp"
}

# The kit's Jupyter kernel "xfer" (the venv's Python) in the venv's own share/jupyter, where the venv's Jupyter
# finds it; the notebook asks for it by name. Re-installed when missing or pointing at another Python.
install_kernel() {
  local spec="$VENV/share/jupyter/kernels/xfer/kernel.json"
  [ -f "$spec" ] && grep -qF "\"$VENV/bin/python\"" "$spec" && return
  begin "install the Jupyter kernel xfer" kernel
  quiet "$VENV/bin/python" -m ipykernel install --sys-prefix --name xfer --display-name "Python 3 (xfer)"
}

link_caffe() {
  local prefix=$1 site pydir
  site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  pydir=$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["pythonpath"])' "$prefix/build-info.json")
  echo "$pydir" >"$site/xfer-pycaffe.pth"
  for t in caffe convert_imageset compute_image_mean upgrade_net_proto_text upgrade_solver_proto_text; do
    [ -x "$prefix/bin/$t" ] && ln -sfn "$prefix/bin/$t" "$VENV/bin/$t"
  done
  # caffe.bin: the name the original README copies into a results folder (`cp .../caffe.bin .`); the same binary,
  # whose RUNPATH names the build's lib/ by absolute path, so a copy runs from anywhere on this machine.
  ln -sfn "$prefix/bin/caffe" "$VENV/bin/caffe.bin"
  # pycaffe's net drawer with the venv's Python (its own shebang names the system's): draw_net NET.prototxt OUT.png
  printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$VENV/bin/python" "$prefix/python/draw_net.py" >"$VENV/bin/draw_net"
  chmod +x "$VENV/bin/draw_net"
  "$VENV/bin/python" - "$prefix" "$VENV/caffe-build.json" <<'PY'
import json, os, sys
prefix, out = sys.argv[1:]
info = json.load(open(os.path.join(prefix, "build-info.json")))
info["prefix"] = prefix
tmp = out + ".tmp"
json.dump(info, open(tmp, "w"), indent=2, sort_keys=True)
os.replace(tmp, out)
PY
}

install_apt_packages
install_venv
install_kernel
prefix=$(PYTHON="$VENV/bin/python" "$ROOT/tools/build_caffe.sh" | tail -n 1)
link_caffe "$prefix"
begin "check the installation (xfer doctor)" doctor
"$VENV/bin/xfer" doctor >"$LOG" 2>&1 || { cat "$LOG" >&2; exit 1; }
echo "[setup] done: Caffe at $prefix; activate with: source .venv/bin/activate" >&2
