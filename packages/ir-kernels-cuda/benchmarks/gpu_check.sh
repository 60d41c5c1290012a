#!/usr/bin/env bash
# One GPU run (under 8 minutes on an H100: the step limits below add up to 455 s) that says where
# the eager host time goes, whether every kernel is still right, and which launch choices are
# fastest. Run from the repository root:
#
#     OUT=/some/dir bash packages/ir-kernels-cuda/benchmarks/gpu_check.sh
#
# Writes under $OUT (default ./gpu_check):
#   env.txt        GPU, driver, torch, Triton, Python
#   host.log/json  benchmarks/host_overhead.py --breakdown: the summary rows, then one row per
#                  stage of ops.rms_norm's fast path (dispatch, supports_args, allocation,
#                  launch preparation, the launcher's Python, the C launch with and without the
#                  driver call), the same with autograd's keys excluded, and cProfile's view
#   tests_rows.log   pytest --device cuda, PDL on (the default): the full conformance grid of the
#                  row ops (rms_norm, fused_add_rms_norm, gelu_and_mul_sparse), registration and
#                  the gpu-marked fast-launch tests
#   tests_cuda2.log  the same for the other ops (gated activations, fp8 quantization, the fused
#                  norm/activation quant ops, rotary): their conformance grid in bf16 (fp16 and
#                  fp32 share the kernels' code paths, and the emulated CI sessions run every
#                  dtype), their own test files and their gpu-marked fast-launch tests
#   tests_nopdl.log  every op's gpu-marked tests (CUDA-graph conformance in bf16, fast launch)
#                  with PDL off
#   tune.log/json  benchmarks/tune_rows.py for rms_norm and fused_add_rms_norm: every (rows,
#                  warps) candidate and PDL on/off per shape, as many shapes as fit in 35 s; the
#                  best per shape and the table entries to change (the full sweep: run tune_rows.py
#                  alone)
#   bench_rows/    benchmarks/bench_ops.py for the row ops without torch.compile, hidden 4096,
#                  tokens 1, 16, 64 (graphs) and 4096: copy and copy-kernel ceilings next to the
#                  provider
#   bench_cuda2/   the same for every other cuda op, tokens 1 and 4096
# (The PTX checks of tests/test_kernels_compile.py compile for sm_90 on any machine: the CPU CI
# sessions run them, so this run does not.)
# Each step has its own time limit, so one that hangs cannot take the others' time; steps.txt
# says each one's exit status (124: it ran out of time) and duration.
set -u
cd "$(dirname "$0")/../../.."
OUT=${OUT:-gpu_check}
PY=${PYTHON:-python}
PKG=packages/ir-kernels-cuda
BENCH=$PKG/benchmarks
T=$PKG/tests
ROW_OPS=rms_norm,fused_add_rms_norm,gelu_and_mul_sparse
CUDA2_OPS=silu_and_mul,gelu_and_mul,silu_and_mul_static_fp8_quant,static_scaled_fp8_quant
CUDA2_OPS=$CUDA2_OPS,dynamic_scaled_fp8_quant,rms_norm_static_fp8_quant
CUDA2_OPS=$CUDA2_OPS,fused_add_rms_norm_static_fp8_quant,rotary_embedding
# Conformance case ids start with the op's name and a dash ("rms_norm-bf16-7x769-contiguous"):
# "rms_norm-" also matches fused_add_rms_norm's cases, not rms_norm_static_fp8_quant's.
ROW_CASES="rms_norm- or gelu_and_mul_sparse-"
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
PYTEST="$PY -m pytest --device cuda -q -p no:cacheprovider"

{
    nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv
    $PY -c "import sys, torch, triton; print('python', sys.version.split()[0]); print('torch', torch.__version__, 'cuda', torch.version.cuda); print('triton', triton.__version__)"
    $PY -c "from ir_triton.pdl import pdl_unsupported_reason as r; print('PDL:', r() or 'supported')"
    lscpu | grep -E 'Model name|^CPU\(s\)|MHz' || true
} >"$OUT/env.txt" 2>&1

step host 45 "$OUT/host.log" $PY $BENCH/host_overhead.py --breakdown --json "$OUT/host.json"
step tests_rows 125 "$OUT/tests_rows.log" $PYTEST \
    $T/test_conformance.py $T/test_registration.py $T/test_fast_launch_gpu.py \
    -k "not TestCudaConformance or $ROW_CASES"
step tests_cuda2 100 "$OUT/tests_cuda2.log" $PYTEST \
    $T/test_conformance.py $T/test_glu.py $T/test_fp8.py $T/test_rotary.py \
    $T/test_kernel_operators.py $T/test_fast_launch_fp8_rotary_gpu.py \
    -k "not TestCudaConformance or (bf16 and not ($ROW_CASES))"
step tests_nopdl 45 "$OUT/tests_nopdl.log" env IR_KERNELS_CUDA_PDL=0 $PYTEST $PKG -m gpu \
    -k "not TestCudaConformance or bf16"
step tune 50 "$OUT/tune.log" $PY $BENCH/tune_rows.py --ops rms_norm,fused_add_rms_norm \
    --tokens 1 64 4096 --budget-s 35 --out "$OUT"
step bench_rows 35 "$OUT/bench_rows.log" $PY $BENCH/bench_ops.py --compile-mode none \
    --ops $ROW_OPS --tokens 1 16 64 4096 --hidden 4096 --repeats 3 --out "$OUT/bench_rows"
step bench_cuda2 50 "$OUT/bench_cuda2.log" $PY $BENCH/bench_ops.py --compile-mode none \
    --ops $CUDA2_OPS --tokens 1 4096 --hidden 4096 --repeats 3 --out "$OUT/bench_cuda2"
cat "$OUT/steps.txt"
