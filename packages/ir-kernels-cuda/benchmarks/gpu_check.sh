#!/usr/bin/env bash
# One GPU run (about 7 minutes on an H100, 8 at most) that says where the eager host time goes, whether the
# kernels are still right, and which launch choices are fastest. Run from the repository root:
#
#     OUT=/some/dir bash packages/ir-kernels-cuda/benchmarks/gpu_check.sh
#
# Writes under $OUT (default ./gpu_check):
#   env.txt        GPU, driver, torch, Triton, Python
#   host.log/json  benchmarks/host_overhead.py --breakdown: the summary rows, then one row per
#                  stage of ops.rms_norm's fast path (dispatch, supports_args, allocation,
#                  launch preparation, the launcher's Python, the C launch with and without the
#                  driver call), the same with autograd's keys excluded, and cProfile's view
#   tests.log      pytest packages/ir-kernels-cuda --device cuda: the conformance grid on the GPU
#                  (PDL on: the default) and the gpu-marked fast-launch tests
#   tests_nopdl.log  the gpu-marked tests and the graph conformance again with PDL off
#   tune.log/json  benchmarks/tune_rows.py: every (rows, warps) candidate and PDL on/off per
#                  shape for rms_norm, fused_add_rms_norm, gelu_and_mul_sparse; the best per
#                  shape and the table entries to change
#   bench/         benchmarks/bench_ops.py without torch.compile, hidden 4096, tokens 1, 16, 64
#                  (graphs) and 4096: copy and copy-kernel ceilings next to the provider
# Each step has its own time limit, so one that hangs cannot take the others' time.
set -u
cd "$(dirname "$0")/../../.."
OUT=${OUT:-gpu_check}
PY=${PYTHON:-python}
BENCH=packages/ir-kernels-cuda/benchmarks
mkdir -p "$OUT"
unset TRITON_INTERPRET IR_OP_PLATFORM IR_KERNELS_CUDA_PDL IR_OP_TRITON_FAST_LAUNCH

step() {  # step NAME SECONDS LOG COMMAND...
    local name=$1 limit=$2 log=$3
    shift 3
    local start=$SECONDS
    timeout "$limit" "$@" >"$log" 2>&1
    local rc=$?
    echo "$name: exit $rc in $((SECONDS - start)) s (limit $limit s) -> $log" | tee -a "$OUT/steps.txt"
}

{
    nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv
    $PY -c "import sys, torch, triton; print('python', sys.version.split()[0]); print('torch', torch.__version__, 'cuda', torch.version.cuda); print('triton', triton.__version__)"
    $PY -c "from ir_kernels_cuda.pdl import pdl_unsupported_reason as r; print('PDL:', r() or 'supported')"
    lscpu | grep -E 'Model name|^CPU\(s\)|MHz' || true
} >"$OUT/env.txt" 2>&1

step host 90 "$OUT/host.log" $PY $BENCH/host_overhead.py --breakdown --json "$OUT/host.json"
step tests 130 "$OUT/tests.log" $PY -m pytest packages/ir-kernels-cuda --device cuda -q -p no:cacheprovider
IR_KERNELS_CUDA_PDL=0 step tests_nopdl 45 "$OUT/tests_nopdl.log" \
    $PY -m pytest packages/ir-kernels-cuda --device cuda -q -p no:cacheprovider -m gpu
step tune 170 "$OUT/tune.log" $PY $BENCH/tune_rows.py --budget-s 140 --out "$OUT"
step bench 45 "$OUT/bench.log" $PY $BENCH/bench_ops.py --compile-mode none \
    --tokens 1 16 64 4096 --hidden 4096 --repeats 5 --out "$OUT/bench"
cat "$OUT/steps.txt"
