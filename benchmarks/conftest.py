"""pytest-benchmark settings for the grid of gpuvec.tools.bench: ``python -m pytest benchmarks``.

``GPUVEC_BENCH_QUICK=1`` runs the CI-sized grid; ``-k`` picks cases by id (e.g. ``-k "rays and cupy"``).
"""

import importlib.util

# The bandwidth floors are a GPU script (python -m benchmarks.gpu_floor), not tests: without cupy,
# collecting it (``--doctest-modules`` imports every module) would fail on its ``import cupy``.
collect_ignore = [] if importlib.util.find_spec("cupy") else ["gpu_floor.py"]
