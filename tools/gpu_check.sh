#!/usr/bin/env bash
# tools/gpu_check.sh: the kit's whole GPU path as one check, meant to run in at most 10 minutes on one GPU, writing
# a report (markdown) of every step with its time and its figures.
#
#   tools/gpu_check.sh [--report FILE (default WORK/report.md)] [--work DIR (default a new temp folder)]
#
#   1. inputs   (CPU) the paper's CaffeNet train net (results/half0A/imagenet_train.prototxt, batch 256, crop 227,
#               mirror, mean) and the same net on DummyData (constant fillers, as docs/cuda.md timed it)
#   2. build    the CUDA build of the current patch set: $CAFFE_CUDA_PREFIX (a build made or carried there; its
#               build-info.json must be a CUDA build naming exactly tools/caffe-patches/*.patch and cuda/*.patch)
#   3. gpu      nvidia-smi must list a GPU. Without one the check stops here with exit 3 ("needs a GPU").
#   4. gtest    Caffe's GPU test cases ($GTEST_FILTER) from $CAFFE_CUDA_TESTS/bin/test.testbin, when given (the
#               folder tools/build_caffe_tests.sh prints with a VENV whose caffe-build.json is the CUDA build's)
#   5. rehearse `xfer rehearse --gpus 0` (ImageNet-shaped tree, LMDBs at 256x256, half0A + transfer0A0B_1_3)
#   6. train    `xfer train half0B --gpu 0` on the rehearsal's LMDB (rendered with the rehearsal's schedule)
#   7. speed    `caffe time -gpu 0` of CaffeNet: DummyData, then the rehearsal's LMDB at CAFFE_DATA_THREADS=1 and 4
#   8. 2 nets   two `caffe time -gpu 0` on LMDB at once on the same GPU, against one alone
# After step 3 a failing step is recorded and the next ones still run; the exit status is 1 if any failed.
#
# Needs on the GPU machine: the kit's venv (`make setup`: xfer and its CPU Caffe, whose convert_imageset makes the
# LMDBs) and the CUDA build (CUDA=1 tools/build_caffe.sh there, or carried: docs/cuda.md). Environment:
# CAFFE_CUDA_PREFIX, CAFFE_CUDA_TESTS, GTEST_FILTER, ITERATIONS (caffe time; default 50), PYTHON (default
# .venv/bin/python).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || PY=python3
ITERATIONS=${ITERATIONS:-50}
# One case per kind of GPU code the paper's nets run: cuDNN and Caffe's own convolution, pooling, LRN, inner
# product, dropout, softmax loss, the SGD solver, the data layer's GPU copy and the synced memory.
GTEST_FILTER=${GTEST_FILTER:-*CuDNNConvolutionLayerTest*:*ConvolutionLayerTest/2*:*PoolingLayerTest/2*:*LRNLayerTest/2*:*InnerProductLayerTest/2*:*NeuronLayerTest/2.TestDropout*:*SoftmaxWithLossLayerTest/2*:*SGDSolverTest/2.TestLeastSquaresUpdate:*DataLayerTest/2.TestReadLMDB:SyncedMemoryTest.*GPU*}
REPORT=
WORK=
while [ $# -gt 0 ]; do
  case $1 in
    --report) REPORT=$2; shift 2;;
    --work) WORK=$2; shift 2;;
    -h|--help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0;;
    *) echo "gpu_check: unknown argument '$1' (--report FILE, --work DIR)" >&2; exit 2;;
  esac
done
[ -n "$WORK" ] || WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
[ -n "$REPORT" ] || REPORT=$WORK/report.md
mkdir -p "$WORK" "$(dirname "$REPORT")"
FAILED=0
START=$(date +%s)

say() { echo "[gpu_check] $*" >&2; }
row() { echo "| $1 | $2 | $3 | $4 |" >>"$REPORT"; }
# step NAME FUNCTION: runs it with its output in $WORK/NAME.log, adds a row (status, seconds, what it said last).
step() {
  local name=$1 t0 rc; shift
  say "$name ..."
  t0=$(date +%s)
  "$@" >"$WORK/$name.log" 2>&1; rc=$?
  local what; what=$(grep -v '^\s*$' "$WORK/$name.log" | tail -n 1 | tr '|' '/' | cut -c1-300)
  if [ $rc -eq 0 ]; then row "$name" ok "$(( $(date +%s) - t0 ))" "$what"
  else row "$name" "FAILED (exit $rc)" "$(( $(date +%s) - t0 ))" "$what; log: $WORK/$name.log"; FAILED=1; fi
  say "$name: exit $rc ($what)"
  return $rc
}
stop() { # stop CODE MESSAGE: the reason goes into the report and onto stderr
  echo "" >>"$REPORT"; echo "Stopped: $2" >>"$REPORT"
  echo "gpu_check: $2" >&2
  exit "$1"
}

make_inputs() {
  local net=$ROOT/results/half0A/imagenet_train.prototxt
  [ -f "$net" ] || { echo "$net is missing"; return 1; }
  cp "$net" "$WORK/caffenet_lmdb.prototxt"
  # DummyData in place of the first layer (the data layer): constant fillers, so no CPU refill each pass.
  "$PY" - "$net" "$WORK/caffenet_dummy.prototxt" <<'EOF' || return 1
import re, sys
text = open(sys.argv[1]).read()
start = text.index("layer {")
end = re.search(r"^}\n", text[start:], re.M).end() + start
dummy = ('layer {\n  name: "data"\n  type: "DummyData"\n  top: "data"\n  top: "label"\n  dummy_data_param {\n'
         '    data_filler { type: "constant" value: 0 }\n    data_filler { type: "constant" value: 0 }\n'
         '    shape { dim: 256 dim: 3 dim: 227 dim: 227 }\n    shape { dim: 256 }\n  }\n}\n')
assert '"Data"' in text[start:end] and "batch_size: 256" in text[start:end], "the first layer is not the data layer"
open(sys.argv[2], "w").write(text[:start] + dummy + text[end:])
EOF
  echo "CaffeNet on LMDB and on DummyData: $WORK/caffenet_{lmdb,dummy}.prototxt"
}

expected_patches() {
  (cd "$ROOT/tools/caffe-patches" && ls ./*.patch cuda/*.patch 2>/dev/null | sed 's|^\./||')
}

check_build() {
  [ -n "${CAFFE_CUDA_PREFIX:-}" ] || {
    echo "CAFFE_CUDA_PREFIX is not set: set it to the CUDA build of this patch set (CUDA=1 tools/build_caffe.sh prints it)"
    return 1; }
  local info=$CAFFE_CUDA_PREFIX/build-info.json
  [ -f "$info" ] && [ -x "$CAFFE_CUDA_PREFIX/bin/caffe" ] || {
    echo "$CAFFE_CUDA_PREFIX holds no Caffe build (no build-info.json or bin/caffe)"; return 1; }
  "$PY" - "$info" "$(expected_patches)" <<'EOF'
import json, sys
info, want = json.load(open(sys.argv[1])), sys.argv[2].split()
if not info.get("cuda"):
    sys.exit(f"{sys.argv[1]}: not a CUDA build (cuda: false); build it with CUDA=1 tools/build_caffe.sh")
if info["patches"] != want:
    sys.exit(f"{sys.argv[1]}: built with patches {info['patches']}, the kit has {want}; rebuild it")
print(f"CUDA build {info['key']} with {len(want)} patches: {sys.argv[1]}")
EOF
}

check_gpu() {
  command -v nvidia-smi >/dev/null || { echo "nvidia-smi is not installed"; return 1; }
  nvidia-smi -L 2>&1 | grep -q '^GPU ' || { echo "nvidia-smi lists no GPU: $(nvidia-smi -L 2>&1 | head -n 1)"; return 1; }
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
}

run_gtest() {
  local bin=${CAFFE_CUDA_TESTS:-}/bin/test.testbin
  [ -n "${CAFFE_CUDA_TESTS:-}" ] && [ -x "$bin" ] || {
    echo "not run: CAFFE_CUDA_TESTS (the folder with bin/test.testbin of the CUDA build) is not set"; return 1; }
  (cd "$CAFFE_CUDA_TESTS/src" && LD_LIBRARY_PATH="$CAFFE_CUDA_PREFIX/lib:${LD_LIBRARY_PATH:-}" \
     timeout 240 "$bin" --gtest_filter="$GTEST_FILTER" 2>&1) | tail -n 40
}

xfer() { XFER_CAFFE_PREFIX=$CAFFE_CUDA_PREFIX "$PY" -m xfer.cli "$@"; }

run_rehearse() { xfer rehearse --gpus 0 --out "$WORK/rehearse" --nets half0A,transfer0A0B_1_3; }
# half0B: not trained by the rehearsal (finished nets are skipped), its data built for transfer0A0B_1_3.
run_train() {
  xfer render --suite paper --out "$WORK/train" --data-dir "$WORK/rehearse/data" --set max_iter=6 --set snapshot=6 \
    --set test_interval=3 --set test_iter=2 --set display=1 --set base_lr=0.001 --set stepsize=4 \
    --set train_batch=8 --set val_batch=10 half0B && xfer train half0B --results "$WORK/train" --gpu 0
}

# caffe_time NET THREADS: img/s of `caffe time` (forward + backward, batch 256) in the rehearsal's half0A folder
caffe_time() {
  local out
  out=$(cd "$WORK/rehearse/results/half0A" && CAFFE_DATA_THREADS=$2 "$CAFFE_CUDA_PREFIX/bin/caffe" time \
        -model "$1" -gpu 0 -iterations "$ITERATIONS" 2>&1) || { echo "$out" | tail -n 5; return 1; }
  echo "$out" | sed -n 's/.*Average Forward-Backward: \([0-9.]*\) ms.*/\1/p' | tail -n 1
}

run_speed() {
  local ms rc=0 net
  for net in dummy:1 lmdb:1 lmdb:4; do
    ms=$(caffe_time "$WORK/caffenet_${net%%:*}.prototxt" "${net##*:}") || rc=1
    echo "CaffeNet ${net%%:*} CAFFE_DATA_THREADS=${net##*:}: ${ms} ms per batch of 256, $(awk -v m="$ms" 'BEGIN {if (m > 0) printf "%.0f", 256000 / m}') img/s"
  done
  return $rc
}

run_two_nets() {
  local a b one
  one=$(caffe_time "$WORK/caffenet_lmdb.prototxt" 4) || return 1
  caffe_time "$WORK/caffenet_lmdb.prototxt" 4 >"$WORK/net_a" & a=$!
  caffe_time "$WORK/caffenet_lmdb.prototxt" 4 >"$WORK/net_b" & b=$!
  wait $a && wait $b || { echo "one of the two nets failed"; return 1; }
  awk -v one="$one" -v x="$(cat "$WORK/net_a")" -v y="$(cat "$WORK/net_b")" 'BEGIN {
    printf "one net %.1f ms (%.0f img/s); two at once %.1f and %.1f ms: %.0f img/s together, %.2fx one net\n",
      one, 256000 / one, x, y, 256000 / x + 256000 / y, (256000 / x + 256000 / y) / (256000 / one) }'
}

{ echo "# tools/gpu_check.sh report"; echo ""
  echo "Started $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname), $(nproc) cores; work dir $WORK"; echo ""
  echo "| step | status | seconds | result |"; echo "|---|---|---|---|"; } >"$REPORT"

step inputs make_inputs || stop 1 "the inputs could not be made (see the row above)"
if [ -n "${CAFFE_CUDA_PREFIX:-}" ]; then step build check_build || stop 1 "the CUDA build does not fit (see the row above)"; fi
step gpu check_gpu || stop 3 "needs a GPU: $(tail -n 1 "$WORK/gpu.log"). Steps before this one ran; nothing after it did."
[ -n "${CAFFE_CUDA_PREFIX:-}" ] || { step build check_build; stop 1 "no CUDA build to check"; }
step gtest run_gtest
step rehearse run_rehearse
step train run_train
step speed run_speed
step two-nets run_two_nets
echo "" >>"$REPORT"
echo "Finished in $(( $(date +%s) - START )) s; $( [ $FAILED = 0 ] && echo 'every step passed' || echo 'some steps FAILED')." >>"$REPORT"
say "report: $REPORT"
exit $FAILED
