"""pytest-benchmark settings for the grid of gpuvec.tools.bench: ``python -m pytest benchmarks``.

``GPUVEC_BENCH_QUICK=1`` runs the CI-sized grid; ``-k`` picks cases by id (e.g. ``-k "rays and cupy"``).
"""
