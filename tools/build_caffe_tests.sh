#!/usr/bin/env bash
# Builds Caffe's own C++ test binary (upstream's gtest target `test.testbin`) for the kit's Caffe build.
#
#   tools/build_caffe_tests.sh        prints the folder holding bin/test.testbin and src/ (its test data)
#
# Same source, patches and cmake flags as the build `make setup` installed: they are read from that build's
# record (.venv/caffe-build.json, written by tools/setup.sh from tools/build_caffe.sh's build-info.json), and the
# result is cached beside it under the same key: $XFER_CACHE/caffe-tests-<key>. A folder is used only when its
# `.complete` marker exists, so a second run (or a warm `make setup`) does not rebuild. The build tree is removed
# afterwards; the binary runs against the kit's installed libcaffe (tools/caffe_tests.py sets LD_LIBRARY_PATH), and
# from the kept source root, where upstream's `make runtest` runs it, so its relative test-data paths resolve.
#
# Environment: VENV (default .venv), XFER_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/xfer), JOBS (default nproc).
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${XFER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/xfer}
VENV=${VENV:-$ROOT/.venv}
JOBS=${JOBS:-$(nproc)}
RECORD=$VENV/caffe-build.json
LOGDIR=$CACHE/logs
mkdir -p "$LOGDIR"

STEP=start; LOG=$LOGDIR/tests-build.log
begin() { STEP=$1; LOG="$LOGDIR/$2.log"; : >"$LOG"; echo "[build_caffe_tests] $STEP (log: $LOG)" >&2; }
on_error() {
  echo "build_caffe_tests: step '$STEP' failed. Read the log: $LOG" >&2
  [ -f "$LOG" ] && tail -n 25 "$LOG" | sed 's/^/    /' >&2
}
trap on_error ERR
quiet() { "$@" >>"$LOG" 2>&1; }
# shellcheck source=tools/build_progress.sh
source "$ROOT/tools/build_progress.sh"; PROGRESS_NAME=build_caffe_tests
die() { echo "build_caffe_tests: $*" >&2; trap - ERR; exit 1; }

# One field of the build record per line: key, prefix, source_dir, then the patches, then the cmake flags (the venv's
# interpreter replaces the recorded one: the key pins its version, and the venv that built the library may be gone).
read_record() {
  "$VENV/bin/python" - "$RECORD" "$VENV/bin/python" <<'PY'
import json, sys
record, python = sys.argv[1:]
info = json.load(open(record))
print(info["key"]); print(info["prefix"]); print(info["source_dir"]); print(len(info["patches"]))
print("\n".join(info["patches"]))
print("\n".join("-DPYTHON_EXECUTABLE=" + python if f.startswith("-DPYTHON_EXECUTABLE=") else f
                for f in info["cmake_flags"]))
PY
}

build() {
  local key=$1 src=$2 dest=$3; shift 3
  local build="$CACHE/build-tests-$key" started=$SECONDS
  rm -rf "$dest" "$build"
  begin "copy source $src" tests-copy-source
  mkdir -p "$build"; cp -a "$src/." "$build/src"; rm -rf "$build/src/build"
  local p
  for p in "${PATCHES[@]}"; do
    [ -f "$ROOT/tools/caffe-patches/$p" ] \
      || die "patch $p of the recorded build is not in tools/caffe-patches; run 'make setup'"
    begin "apply patch $p" tests-patch
    quiet patch -d "$build/src" -p1 --forward --batch -i "$ROOT/tools/caffe-patches/$p"
  done
  begin "cmake configure" tests-cmake
  quiet cmake -S "$build/src" -B "$build/obj" "$@"
  begin "compile test.testbin (make -j$JOBS; library included, ~10 min on 2 cores)" tests-make
  with_progress make -C "$build/obj" -j"$JOBS" test.testbin
  begin "keep the binary and the source root" tests-install
  mkdir -p "$dest.tmp/bin"
  install -m 755 "$build/obj/test/test.testbin" "$dest.tmp/bin/test.testbin"
  mv "$build/src" "$dest.tmp/src"
  printf '{"key": "%s", "jobs": %s, "build_seconds": %s}\n' "$key" "$JOBS" "$((SECONDS - started))" \
    >"$dest.tmp/build-info.json"
  rm -rf "$build"
  mv "$dest.tmp" "$dest"
  touch "$dest/.complete"
  echo "[build_caffe_tests] built $dest in $((SECONDS - started)) s" >&2
}

main() {
  [ -f "$RECORD" ] || die "no Caffe build record at $RECORD; run 'make setup' first"
  local record key prefix src n
  mapfile -t record < <(read_record)
  key=${record[0]}; prefix=${record[1]}; src=${record[2]}; n=${record[3]}
  PATCHES=("${record[@]:4:$n}")
  local flags=("${record[@]:$((4 + n))}")
  local dest="$CACHE/caffe-tests-$key"
  if [ -f "$dest/.complete" ]; then echo "[build_caffe_tests] cached $dest" >&2; echo "$dest"; return; fi
  [ -d "$src" ] || die "the Caffe source $src that $prefix was built from is gone;" \
    "remove $prefix and run 'make setup' (it fetches and builds again)"
  # Two `make test` runs on one machine share the cache: the second waits for the first build.
  exec 9>"$CACHE/caffe-tests-$key.lock"
  flock 9
  if [ ! -f "$dest/.complete" ]; then rm -rf "$dest.tmp"; build "$key" "$src" "$dest" "${flags[@]}"; fi
  echo "$dest"
}

main "$@"
