#!/usr/bin/env bash
# `make cuda-check`: shows that Caffe's CUDA build compiles and links here with the installed nvcc (not part of CI).
#
#   tools/cuda_check.sh              build without cuDNN, then with cuDNN, and check both
#   tools/cuda_check.sh nocudnn      only the build without cuDNN
#   tools/cuda_check.sh cudnn        only the build with cuDNN
#   tools/cuda_check.sh overlay V    only make the toolkit overlay for V (nocudnn|cudnn) and print its path
#
# The machine's CUDA toolkit (nvcc 13) has no cuBLAS/cuRAND (and no cuDNN). NVIDIA ships them as Python wheels
# in the package index; they are fetched with pip into the cache (never into the repository) and merged with the
# toolkit into a folder of symbolic links that looks like a full toolkit, which is given to build_caffe.sh as
# CUDA_HOME. build_caffe.sh then runs unchanged (CUDA=1), into its own cache folder so its logs never mix with
# those of the CPU build. Then: ldd of `caffe` must resolve libcudart/libcublas/libcurand (and libcudnn), and
# `caffe device_query -gpu 0` must fail cleanly on a machine without a GPU.
#
# Environment: PYTHON (its pip fetches the wheels; default .venv/bin/python), XFER_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/xfer), JOBS (default 2), NICE (default 19),
# CUDA_REAL (the installed toolkit; default: the newest /usr/local/cuda*/bin/nvcc), CUDA_ARCH_BIN/CUDA_ARCH_PTX.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${XFER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xfer}
CHECK_CACHE=$CACHE/cuda-check
WHEELS=$CACHE/cuda-wheels
JOBS=${JOBS:-2}
NICE=${NICE:-19}
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
DEBIAN_VERSION=1.0.0+git20180821.99bd997-8
# The wheels that match CUDA 13.0 (the toolkit here): cuBLAS 13.0 update 2, cuRAND of 13.0, cuDNN 9.13.
CUBLAS_WHEEL=nvidia-cublas==13.0.2.14
CURAND_WHEEL=nvidia-curand==10.4.0.35
CUDNN_WHEEL=nvidia-cudnn-cu13==9.13.0.50

say() { echo "[cuda-check] $*" >&2; }
fail() { echo "cuda-check: $*" >&2; exit 1; }

find_toolkit() {
  if [ -n "${CUDA_REAL:-}" ]; then echo "$CUDA_REAL"; return; fi
  local nvcc
  nvcc=$(ls -d /usr/local/cuda*/bin/nvcc 2>/dev/null | sort -V | tail -n1 || true)
  [ -n "$nvcc" ] || fail "no nvcc under /usr/local/cuda*; install the CUDA toolkit or set CUDA_REAL=/path/to/cuda"
  (cd "$(dirname "$nvcc")/.." && pwd -P)
}

# pip (the venv's) fetches a wheel once into the cache; Python's zipfile unpacks it once.
fetch_wheel() {
  local spec=$1 dest=$2 name=${1%%==*}
  if [ -f "$dest/.complete" ]; then return; fi
  mkdir -p "$WHEELS"
  local file; file=$(ls "$WHEELS"/"${name//-/_}"-"${spec##*==}"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$file" ]; then
    say "fetching $spec with pip"
    "$PY" -m pip download --quiet --no-deps --only-binary=:all: -d "$WHEELS" "$spec" \
      || fail "pip could not fetch $spec (the package index must be reachable)"
    file=$(ls "$WHEELS"/"${name//-/_}"-"${spec##*==}"-*.whl | head -n1)
  fi
  rm -rf "$dest"; mkdir -p "$dest"
  "$PY" -m zipfile -e "$file" "$dest"
  touch "$dest/.complete"
}

# link_all SRC DEST: a symbolic link in DEST for every entry of SRC (DEST's own entries win).
link_all() {
  local f
  for f in "$1"/*; do [ -e "$2/$(basename "$f")" ] || ln -s "$f" "$2/"; done
}

# The toolkit with the wheels' headers and libraries beside its own, as FindCUDA expects them
# (include/, lib64/, bin/, no targets/ folder so that include/ is the one searched).
make_overlay() {
  local variant=$1 real; real=$(find_toolkit)
  local libs=$CACHE/cuda-libs
  fetch_wheel "$CUBLAS_WHEEL" "$libs/cublas"
  fetch_wheel "$CURAND_WHEEL" "$libs/curand"
  local parts=("$libs/cublas/nvidia/cu13" "$libs/curand/nvidia/cu13")
  if [ "$variant" = cudnn ]; then
    fetch_wheel "$CUDNN_WHEEL" "$libs/cudnn"
    parts+=("$libs/cudnn/nvidia/cudnn")
  fi
  local dest=$CACHE/cuda-overlay-$variant
  if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$real" ]; then echo "$dest"; return; fi
  rm -rf "$dest"; mkdir -p "$dest/include" "$dest/lib64"
  local p lib
  for p in "${parts[@]}"; do
    link_all "$p/include" "$dest/include"
    link_all "$p/lib" "$dest/lib64"
  done
  link_all "$real/include" "$dest/include"
  link_all "$real/lib64" "$dest/lib64"
  for p in bin nvvm nvml share; do [ -e "$real/$p" ] && ln -s "$real/$p" "$dest/$p"; done
  # The wheels carry only libX.so.N; the linker looks for libX.so.
  for lib in "$dest"/lib64/lib*.so.*; do
    local base=${lib##*/}; base=${base%%.so.*}.so
    [ -e "$dest/lib64/$base" ] || ln -s "${lib##*/}" "$dest/lib64/$base"
  done
  echo "$real" >"$dest/.complete"
  echo "$dest"
}

# The check's own cache reuses the source package that the CPU build already fetched.
prepare_check_cache() {
  mkdir -p "$CHECK_CACHE/src"
  local main_src=$CACHE/src/caffe-$DEBIAN_VERSION
  if [ -f "$main_src/.complete" ] && [ ! -e "$CHECK_CACHE/src/caffe-$DEBIAN_VERSION" ]; then
    ln -s "$main_src" "$CHECK_CACHE/src/caffe-$DEBIAN_VERSION"
  fi
}

build_variant() {
  local variant=$1 overlay prefix start
  overlay=$(make_overlay "$variant")
  prepare_check_cache
  say "building Caffe with CUDA ($variant), CUDA_HOME=$overlay, JOBS=$JOBS, nice $NICE"
  start=$(date +%s)
  prefix=$(CUDA=1 CUDA_HOME="$overlay" XFER_CACHE="$CHECK_CACHE" JOBS="$JOBS" \
           nice -n "$NICE" bash "$ROOT/tools/build_caffe.sh" | tail -n1)
  say "$variant: build done in $(( $(date +%s) - start )) s: $prefix"
  verify_build "$variant" "$prefix"
}

verify_build() {
  local variant=$1 prefix=$2 caffe=$2/bin/caffe
  [ -x "$caffe" ] || fail "$caffe is missing"
  grep -q '"-DCPU_ONLY=OFF"' "$prefix/build-info.json" || fail "$prefix is not a CUDA build"
  local want=(libcudart libcublas libcurand) lib line
  [ "$variant" = cudnn ] && want+=(libcudnn)
  say "ldd $caffe"
  ldd "$prefix/lib/libcaffe.so" | grep -E 'libcuda|cublas|curand|cudnn' | sed 's/^/    /' >&2
  for lib in "${want[@]}"; do
    line=$(ldd "$caffe" | grep "$lib\.so" || true)
    [ -n "$line" ] || fail "$caffe does not link $lib"
    case $line in *"not found"*) fail "$caffe: $line";; esac
  done
  if ldd "$caffe" | grep -q 'not found'; then fail "$caffe has unresolved libraries: $(ldd "$caffe" | grep 'not found')"; fi
  # Without a GPU (patch 0004), device_query prints one error line and exits 1; with one, it lists the device.
  local out rc=0
  out=$("$caffe" device_query -gpu 0 2>&1) || rc=$?
  echo "$out" | tail -n 2 | sed 's/^/    /' >&2
  if nvidia-smi -L >/dev/null 2>&1; then
    [ "$rc" -eq 0 ] || fail "caffe device_query -gpu 0 failed (exit $rc) on a machine with a GPU"
  else
    [ "$rc" -eq 1 ] && grep -q 'No usable CUDA device' <<<"$out" \
      || fail "caffe device_query -gpu 0 without a GPU: expected 'No usable CUDA device' and exit 1, got exit $rc"
  fi
  local linked=cudart/cublas/curand; [ "$variant" = cudnn ] && linked+=/cudnn
  say "$variant: OK ($caffe links $linked; device_query exit $rc)"
}

main() {
  local what=${1:-all}
  case $what in
    overlay) make_overlay "${2:?nocudnn or cudnn}";;
    nocudnn|cudnn) build_variant "$what";;
    all) build_variant nocudnn; build_variant cudnn;;
    *) fail "unknown argument '$what' (all, nocudnn, cudnn, overlay V)";;
  esac
}

main "$@"
