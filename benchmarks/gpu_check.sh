#!/usr/bin/env bash
# One device call: everything that can run on a GPU, a short table last.
#   1. the whole test suite with GPUVEC_BACKEND=cupy GPUVEC_REQUIRE_GPU=1 (every xp-parametrised test on
#      cupy; the impl fixture runs each CUDA kernel and compares it with the cupyx reference on the device);
#   2. the dask-of-cupy path (tests/test_dask*.py, where dask travelled as wheels: see the device README);
#   3. torch/JAX arrays through DLPack (tests/test_dlpack.py picks them up where installed);
#   4. the GPU benchmark grid and the bandwidth floors.
# Usage on the GPU machine (no installs there): bash benchmarks/gpu_check.sh   (logs under $OUT, default ./out)
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
python3 -c "import cupy, numpy, scipy; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__)" | tee -a "$OUT/device.txt"
python3 -c "import dask, distributed; print('dask', dask.__version__)" 2>/dev/null | tee -a "$OUT/device.txt"
for lib in torch jax; do python3 -c "import $lib; print('$lib', $lib.__version__)" 2>/dev/null | tee -a "$OUT/device.txt"; done

GPUVEC_BACKEND=cupy GPUVEC_REQUIRE_GPU=1 timeout "${TEST_TIMEOUT:-300}" python3 -m pytest -q -p no:cacheprovider -x \
    2>&1 | tee "$OUT/tests.log" | tail -25
tests_status=${PIPESTATUS[0]}

timeout "${BENCH_TIMEOUT:-180}" python3 -m pytest benchmarks -q -p no:cacheprovider -k "cupy or sklearn" \
    --benchmark-json="$OUT/bench_gpu.json" > "$OUT/bench_gpu.log" 2>&1
echo "gpu benchmarks exit status $?"
python3 -m benchmarks.gpu_floor 2>&1 | tee "$OUT/floor.txt"

echo; echo "=== summary ==="
cat "$OUT/device.txt"
echo "tests: $(tail -1 "$OUT/tests.log") (exit $tests_status)"
grep -E "^(FAILED|ERROR)" "$OUT/tests.log" | head -20
[ -f "$OUT/bench_gpu.json" ] && python3 -m benchmarks.summarize "$OUT/bench_gpu.json"
cat "$OUT/floor.txt"
exit "$tests_status"
