#!/usr/bin/env bash
# One GPU check of the AcGAN example, in under 8 minutes on one H100.
#
# Usage:
#   bash benchmarks/gpu_check.sh [OUT_DIR] [--dry-run]
#   CPU_SMOKE=1 bash benchmarks/gpu_check.sh [OUT_DIR]     # same as --dry-run
#
# Parts, in this order, each with its own timeout (seconds) and all within
# an overall budget (GPU_CHECK_BUDGET_S, default 470 s):
#   env            nvidia-smi, torch and CUDA versions            -> env.txt
#   cuda_tests     pytest -m cuda tests/test_cuda.py               -> cuda_tests.xml
#   train_step     benchmarks/train_step.py, paper networks, 224 px,
#                  batch 64, bf16, eager                            -> train_step_bf16.json
#   inference      benchmarks/inference.py, paper, 224 px, 1 face,
#                  plain vs optimised                               -> inference.json
#   loader         benchmarks/loader.py, 8 and 16 workers           -> loader.json
#   train_run      examples/morph_aging/train.py --preset paper
#                  --max-minutes 2 on synthetic faces               -> run/ (metrics.jsonl ...)
#   train_compile  as train_step, with --compile                    -> train_step_bf16_compile.json
#   summary        benchmarks/gpu_check_summary.py: checks and figures -> summary.md, summary.json
#
# Exits non-zero when a part fails or times out, when a CUDA test fails (or,
# on a GPU, none runs), or when the training run's mean attention leaves
# [0.05, 0.98] after iteration 100 or a step was skipped. Logs of every part
# are in OUT_DIR/logs/.
#
# --dry-run / CPU_SMOKE=1 runs every part at tiny sizes on the CPU (about a
# minute on an idle 2-core machine): it checks the script and its plumbing,
# not the GPU. The CUDA tests then skip, which is not a failure; the
# compile part runs eagerly (torch.compile on a CPU takes minutes).
set -uo pipefail

OUT=""
SMOKE="${CPU_SMOKE:-0}"
for arg in "$@"; do
  case "$arg" in
    --dry-run) SMOKE=1 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) echo "gpu_check.sh: unknown option $arg" >&2; exit 2 ;;
    *) if [ -n "$OUT" ]; then echo "gpu_check.sh: one output folder, got $OUT and $arg" >&2; exit 2; fi
       OUT="$arg" ;;
  esac
done
OUT="${OUT:-gpu_check_out}"
[ "$SMOKE" = "1" ] || SMOKE=0

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO" || exit 2
mkdir -p "$OUT/logs" || exit 2
OUT="$(cd "$OUT" && pwd)"
PY="${PYTHON:-python}"
BUDGET="${GPU_CHECK_BUDGET_S:-470}"
START=$(date +%s)
FAILED=0
printf 'part\trc\tseconds\tstatus\tcommand\n' > "$OUT/parts.tsv"

# run_part NAME TIMEOUT CMD...: run with a timeout capped by the remaining budget
run_part() {
  local name="$1" limit="$2"; shift 2
  local now left t0 rc status
  now=$(date +%s); left=$(( BUDGET - (now - START) ))
  if [ "$left" -lt 15 ]; then
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" 124 0 "skipped-out-of-budget" "$*" >> "$OUT/parts.tsv"
    echo "[gpu_check] $name: skipped, the ${BUDGET}s budget is spent" >&2
    FAILED=1
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "[gpu_check] $name (timeout ${limit}s): $*" >&2
  t0=$(date +%s)
  timeout --kill-after=15 "$limit" "$@" > "$OUT/logs/$name.out" 2> "$OUT/logs/$name.err"
  rc=$?
  case "$rc" in
    0) status=ok ;;
    124|137) status=timeout; FAILED=1 ;;
    *) status=failed; FAILED=1 ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" "$status" "$*" >> "$OUT/parts.tsv"
  echo "[gpu_check] $name: $status (exit $rc, $(( $(date +%s) - t0 ))s)" >&2
  if [ "$status" != ok ]; then tail -n 5 "$OUT/logs/$name.err" >&2; fi
  return 0
}

if [ "$SMOKE" = 1 ]; then
  echo "[gpu_check] CPU smoke run: tiny sizes, no GPU figure" >&2
  # one thread: tiny kernels on a shared machine only spin with more
  export OMP_NUM_THREADS=1
  DEV=(--device cpu --threads 1)
  NET=(--preset cpu-demo --image-size 32 --batch-size 2 --g-channels 8 --g-res-blocks 1 --d-channels 8)
  STEP_ARGS=("${DEV[@]}" "${NET[@]}" --precision bf16 --warmup 1 --repeats 1)
  COMPILE_FLAG=()
  INFER_ARGS=("${DEV[@]}" --preset cpu-demo --image-size 32 --g-channels 8 --g-res-blocks 1 --d-channels 8
              --batch-size 1 --compare --warmup 1 --repeats 1)
  LOADER_ARGS=(--workers 0,1 --image-size 64 --batch-size 8 --batches 2 --repeats 1 --warmup-batches 1
               --jpeg-count 16 --jpeg-sizes 160 --single-core-images 4)
  TRAIN_ARGS=(--preset paper --device cpu --image-size 64 --batch-size 4 --g-channels 8 --g-res-blocks 1
              --d-channels 8 --num-subjects 20 --max-steps 120 --max-minutes 1 --log-every 10)
  T_TESTS=120; T_STEP=90; T_INFER=60; T_LOADER=90; T_TRAIN=120; T_COMPILE=90
else
  STEP_ARGS=(--device cuda --preset paper --image-size 224 --batch-size 64 --precision bf16 --warmup 3 --repeats 5)
  COMPILE_FLAG=(--compile)
  INFER_ARGS=(--device cuda --preset paper --image-size 224 --batch-size 1 --compare --warmup 3 --repeats 5)
  LOADER_ARGS=(--workers 8,16 --image-size 224 --batch-size 64 --batches 16 --repeats 3 --warmup-batches 2)
  # 400 subjects: 1,800 training images rendered in a few seconds before the clock starts
  TRAIN_ARGS=(--preset paper --device cuda --num-subjects 400 --max-minutes 2 --log-every 10)
  T_TESTS=150; T_STEP=120; T_INFER=90; T_LOADER=120; T_TRAIN=230; T_COMPILE=240
fi

{
  date -u +"date %Y-%m-%dT%H:%M:%SZ"
  echo "git $(git rev-parse HEAD 2>/dev/null) dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | wc -l)"
  echo "smoke $SMOKE"
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available(), 'device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu')"
  nproc
} > "$OUT/env.txt" 2>&1

if [ "$SMOKE" = 0 ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "[gpu_check] CUDA is not available: use --dry-run (or CPU_SMOKE=1) for the CPU smoke run" >&2
  exit 2
fi

run_part cuda_tests "$T_TESTS" "$PY" -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider \
  --junitxml="$OUT/cuda_tests.xml" -rs
run_part train_step "$T_STEP" "$PY" benchmarks/train_step.py "${STEP_ARGS[@]}" --json-out "$OUT/train_step_bf16.json"
run_part inference "$T_INFER" "$PY" benchmarks/inference.py "${INFER_ARGS[@]}" --json-out "$OUT/inference.json"
run_part loader "$T_LOADER" "$PY" benchmarks/loader.py "${LOADER_ARGS[@]}" --json-out "$OUT/loader.json"
rm -rf "$OUT/run"
run_part train_run "$T_TRAIN" "$PY" examples/morph_aging/train.py "${TRAIN_ARGS[@]}" --no-progress \
  --out "$OUT/run"
run_part train_compile "$T_COMPILE" "$PY" benchmarks/train_step.py "${STEP_ARGS[@]}" "${COMPILE_FLAG[@]}" \
  --json-out "$OUT/train_step_bf16_compile.json"

SUMMARY_ARGS=("$OUT")
[ "$SMOKE" = 1 ] && SUMMARY_ARGS+=(--smoke)
"$PY" benchmarks/gpu_check_summary.py "${SUMMARY_ARGS[@]}"
rc=$?
echo "[gpu_check] $(( $(date +%s) - START ))s in all; summary in $OUT/summary.md" >&2
if [ "$rc" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
  exit 1
fi
exit 0
