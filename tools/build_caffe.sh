#!/usr/bin/env bash
# Builds real BVLC Caffe (CLI tools + pycaffe) from source, cached outside the repository.
#
#   tools/build_caffe.sh            CPU_ONLY + OpenBLAS (default)
#   CUDA=1 tools/build_caffe.sh     CUDA build (cuDNN only if its header is found)
#   CAFFE_SRC=/path/to/caffe        a BVLC/caffe checkout or tarball instead of Debian's source package
#
# Environment: PYTHON (interpreter pycaffe is built for; default .venv/bin/python), XFER_CACHE
# (default ${XDG_CACHE_HOME:-~/.cache}/xfer), JOBS (default nproc), CUDA_ARCH_BIN / CUDA_ARCH_PTX (default 90),
# CUDA_HOME (default /usr/local/cuda), CAFFE_EXTRA_CMAKE (extra cmake arguments, part of the cache key),
# CAFFE_SKIP_PATCHES (patch file names to leave out, e.g. "0005-parallel-data-transform.patch": the build without
# one patch, under the key that patch set has; tests compare against it).
#
# The build lands in $XFER_CACHE/caffe-<key>, key = source version + patch hashes + flags + python/numpy
# versions. A folder is used only when its `.complete` marker exists; anything else is removed and rebuilt.
# Prints the install prefix as the last line of stdout.
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${XFER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xfer}
PY=${PYTHON:-$ROOT/.venv/bin/python}
CUDA=${CUDA:-0}
JOBS=${JOBS:-$(nproc)}
DEBIAN_VERSION=1.0.0+git20180821.99bd997-8
DEBIAN_SUITE=bullseye
LOGDIR=$CACHE/logs
mkdir -p "$LOGDIR"

STEP="start"; LOG="$LOGDIR/build.log"
begin() { STEP=$1; LOG="$LOGDIR/$2.log"; : >"$LOG"; echo "[build_caffe] $STEP (log: $LOG)" >&2; }
on_error() {
  echo "build_caffe: step '$STEP' failed. Read the log: $LOG" >&2
  [ -f "$LOG" ] && tail -n 25 "$LOG" | sed 's/^/    /' >&2
}
trap on_error ERR
quiet() { "$@" >>"$LOG" 2>&1; }
# shellcheck source=tools/build_progress.sh
source "$ROOT/tools/build_progress.sh"
die() { echo "build_caffe: $*" >&2; trap - ERR; exit 1; }

# --- source -------------------------------------------------------------------------------------------
mirror_uri() {
  # The deb-src line reuses the machine's own Debian mirror; the repository never names a host.
  local uri
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 ~ /debian/ {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}' \
    /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list*; set CAFFE_SRC=/path/to/caffe"
  echo "${uri%/}"
}

# fetch_debian_source and local_source set SRC (no command substitution, so a failure is reported once).
fetch_debian_source() {
  local dest="$CACHE/src/caffe-$DEBIAN_VERSION"
  SRC=$dest
  if [ -f "$dest/.complete" ]; then return; fi
  begin "fetch Debian source package caffe=$DEBIAN_VERSION ($DEBIAN_SUITE)" fetch-source
  local work; work=$(mktemp -d "$CACHE/src/fetch.XXXXXX")
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
  # A private apt configuration: the system's sources are read, never edited.
  local uri; uri=$(mirror_uri)
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $DEBIAN_SUITE main" >"$work/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
              -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=root")
  quiet apt-get "${opts[@]}" update
  (cd "$work" && quiet apt-get "${opts[@]}" source "caffe=$DEBIAN_VERSION")
  rm -rf "$dest"
  mv "$work/caffe-${DEBIAN_VERSION%-*}" "$dest"
  rm -rf "$work"
  touch "$dest/.complete"
}

local_source() {
  # CAFFE_SRC: a directory is used in place; a tarball is unpacked once into the cache.
  if [ -d "$CAFFE_SRC" ]; then SRC=$(cd "$CAFFE_SRC" && pwd); return; fi
  [ -f "$CAFFE_SRC" ] || die "CAFFE_SRC=$CAFFE_SRC is neither a directory nor a file (give a caffe checkout or tarball)"
  local sum dest; sum=$(sha256sum "$CAFFE_SRC" | cut -c1-16); dest="$CACHE/src/local-$sum"
  SRC=$dest
  if [ ! -f "$dest/.complete" ]; then
    begin "unpack $CAFFE_SRC" unpack-source
    rm -rf "$dest"; mkdir -p "$dest"
    quiet tar -xf "$CAFFE_SRC" -C "$dest" --strip-components=1
    touch "$dest/.complete"
  fi
}

source_id() {
  # What the cache key says about the source.
  if [ -z "${CAFFE_SRC:-}" ]; then echo "debian:$DEBIAN_VERSION"; return; fi
  if git -C "$1" rev-parse HEAD >/dev/null 2>&1; then
    echo "git:$(git -C "$1" rev-parse HEAD)$(git -C "$1" diff --quiet || echo +dirty$(git -C "$1" diff | sha256sum | cut -c1-8))"
  else
    echo "tree:$(cd "$1" && find . -path ./build -prune -o -path ./.git -prune -o -type f -print0 | sort -z \
      | xargs -0 sha256sum | sha256sum | cut -c1-16)"
  fi
}

# --- flags --------------------------------------------------------------------------------------------
cmake_flags() {
  local py_inc py_lib
  py_inc=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  py_lib=$("$PY" -c 'import sysconfig as s, os; print(os.path.join(s.get_config_var("LIBDIR"), s.get_config_var("LDLIBRARY")))')
  local f=(-DCMAKE_BUILD_TYPE=Release -DBLAS=Open -DBUILD_python=ON -Dpython_version=3 -DBUILD_docs=OFF
           -DBUILD_matlab=OFF -DUSE_OPENCV=ON -DUSE_LEVELDB=ON -DUSE_LMDB=ON
           "-DPYTHON_EXECUTABLE=$PY" "-DPYTHON_INCLUDE_DIR=$py_inc" "-DPYTHON_LIBRARY=$py_lib")
  if [ "$CUDA" = 1 ]; then
    local cuda_home=${CUDA_HOME:-/usr/local/cuda}
    # Caffe's "All"/"Auto" lists stop at sm_61 and always add PTX 50; nvcc 13 accepts compute_75 and newer only.
    f+=(-DCPU_ONLY=OFF -DCUDA_ARCH_NAME=Manual "-DCUDA_ARCH_BIN=${CUDA_ARCH_BIN:-90}" "-DCUDA_ARCH_PTX=${CUDA_ARCH_PTX:-90}"
        "-DCUDA_TOOLKIT_ROOT_DIR=$cuda_home")
    if [ -f "$cuda_home/include/cudnn.h" ] || [ -f /usr/include/cudnn.h ] || [ -n "${CUDNN_ROOT:-}" ]; then
      f+=(-DUSE_CUDNN=ON)
    else
      f+=(-DUSE_CUDNN=OFF)
    fi
  else
    f+=(-DCPU_ONLY=ON)
  fi
  # shellcheck disable=SC2206
  [ -n "${CAFFE_EXTRA_CMAKE:-}" ] && f+=($CAFFE_EXTRA_CMAKE)
  printf '%s\n' "${f[@]}"
}

# Patches for every build, then those that only a CUDA build needs (they touch CUDA code and cmake's CUDA
# detection only; keeping them apart keeps the CPU build's cache key stable).
patch_list() {
  local p skip
  for p in "$ROOT"/tools/caffe-patches/*.patch; do
    for skip in ${CAFFE_SKIP_PATCHES:-}; do
      [ "$(basename "$p")" = "$skip" ] && continue 2
    done
    echo "$p"
  done
  if [ "$CUDA" = 1 ] && ls "$ROOT"/tools/caffe-patches/cuda/*.patch >/dev/null 2>&1; then
    ls "$ROOT"/tools/caffe-patches/cuda/*.patch
  fi
}

# --- build --------------------------------------------------------------------------------------------
main() {
  [ -x "$PY" ] || die "$PY not found; run 'make setup' (it creates .venv) or set PYTHON=/path/to/python3"
  mkdir -p "$CACHE/src"
  if [ -n "${CAFFE_SRC:-}" ]; then local_source; else fetch_debian_source; fi
  local src=$SRC
  mapfile -t flags < <(cmake_flags)
  local numpy_v py_v key skip
  numpy_v=$("$PY" -c 'import numpy; print(numpy.__version__)')
  py_v=$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
  mapfile -t patches < <(patch_list)
  for skip in ${CAFFE_SKIP_PATCHES:-}; do
    [ -f "$ROOT/tools/caffe-patches/$skip" ] || die "CAFFE_SKIP_PATCHES names $skip, which is not in tools/caffe-patches/"
  done
  # The venv's path is left out of the key: a fresh clone elsewhere (CI) reuses the build made for the same
  # Python and numpy versions; pycaffe does not depend on where the venv lives.
  key=$({ source_id "$src"; cat "${patches[@]}"; printf '%s\n' "${flags[@]}" | grep -v '^-DPYTHON_EXECUTABLE='
          echo "py=$py_v numpy=$numpy_v"; } \
        | sha256sum | cut -c1-12)
  local prefix="$CACHE/caffe-$key"
  # Two setups at once (worktrees of one clone, CI beside a session) build a key once: the second waits here.
  exec 9>"$CACHE/caffe-$key.lock"
  flock 9
  if [ -f "$prefix/.complete" ]; then echo "[build_caffe] cached build $prefix" >&2; echo "$prefix"; return; fi

  local build="$CACHE/build-$key"
  rm -rf "$prefix" "$build"
  begin "copy source" copy-source
  mkdir -p "$build"; cp -a "$src/." "$build/src"; rm -rf "$build/src/build"
  for p in "${patches[@]}"; do
    begin "apply patch $(basename "$p")" "patch-$(basename "$p" .patch)"
    quiet patch -d "$build/src" -p1 --forward --batch -i "$p"
  done
  begin "cmake configure" cmake
  quiet cmake -S "$build/src" -B "$build/obj" "-DCMAKE_INSTALL_PREFIX=$prefix" "${flags[@]}"
  begin "compile (make -j$JOBS)" make
  with_progress make -C "$build/obj" -j"$JOBS" all pycaffe
  begin "install" install
  quiet make -C "$build/obj" install
  PATCH_ROOT="$ROOT/tools/caffe-patches" PATCH_LIST=$(printf '%s\n' "${patches[@]}") write_build_info "$prefix" "$src" "$key" "$py_v" "$numpy_v" "${flags[@]}"
  rm -rf "$build"
  touch "$prefix/.complete"
  echo "[build_caffe] built $prefix" >&2
  echo "$prefix"
}

write_build_info() {
  local prefix=$1 src=$2 key=$3 py_v=$4 numpy_v=$5; shift 5
  local pydir; pydir=$(dirname "$(dirname "$(find "$prefix" -name '_caffe*.so' | head -n1)")")
  "$PY" - "$prefix/build-info.json" "$(source_id "$src")" "$src" "$key" "$py_v" "$numpy_v" "$pydir" "$CUDA" "$@" <<'EOF'
import json, os, sys
out, source, src, key, py_v, numpy_v, pydir, cuda, *flags = sys.argv[1:]
info = dict(source=source, source_dir=src, key=key, python=py_v, numpy=numpy_v, pythonpath=pydir,
            cuda=cuda == "1", cmake_flags=flags)
info["patches"] = [os.path.relpath(p, os.environ["PATCH_ROOT"]) for p in os.environ["PATCH_LIST"].split("\n")]
json.dump(info, open(out, "w"), indent=2, sort_keys=True)
EOF
}

main "$@"
