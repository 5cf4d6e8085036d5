#!/usr/bin/env bash
# One device call: the whole test suite on cupy, the GPU benchmarks, the bandwidth floors, a short table last.
# Usage on the GPU machine (no installs there): bash benchmarks/gpu_check.sh   (logs under $OUT, default ./out)
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
export PYTHONPATH=. PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/device.txt"
python3 -c "import cupy, numpy, scipy; print('cupy', cupy.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__)" | tee -a "$OUT/device.txt"

GPUVEC_BACKEND=cupy GPUVEC_REQUIRE_GPU=1 python3 -m pytest -q -p no:cacheprovider 2>&1 | tee "$OUT/tests.log" | tail -25
tests_status=${PIPESTATUS[0]}

timeout "${BENCH_TIMEOUT:-240}" python3 -m pytest benchmarks -q -p no:cacheprovider -k "cupy or sklearn" \
    --benchmark-json="$OUT/bench_gpu.json" > "$OUT/bench_gpu.log" 2>&1
echo "gpu benchmarks exit status $?"
python3 -m benchmarks.gpu_floor 2>&1 | tee "$OUT/floor.txt"

echo; echo "=== summary ==="
cat "$OUT/device.txt"
echo "tests: $(tail -1 "$OUT/tests.log") (exit $tests_status)"
[ -f "$OUT/bench_gpu.json" ] && python3 -m benchmarks.summarize "$OUT/bench_gpu.json"
cat "$OUT/floor.txt"
exit "$tests_status"
