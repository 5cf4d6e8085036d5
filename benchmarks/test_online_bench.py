"""Online EM (``partial_fit``) in one pass over a file read chunk by chunk, against the dask batch fit.

``python -m pytest benchmarks/test_online_bench.py -s`` writes X (N x 8, K = 8 well-separated
clusters, float64) to a ``np.memmap`` file, then times, on the same file:

- **online**: one pass of ``partial_fit`` over chunks of ``CHUNK`` rows read from the file in order
  with ``np.fromfile`` (the process holds one chunk at a time: the file may be larger than memory);
- **dask batch**: ``fit`` on ``da.from_array(memmap, chunks=CHUNK)`` (exact EM: one pass over the
  file per iteration, to convergence), on dask's threaded scheduler;

and prints the held-out score (mean log-likelihood per sample, 20,000 rows drawn apart), the time,
the passes over the file and the process's peak memory growth during each (for the dask fit it
includes the memmap's pages it read, which the kernel can drop under pressure). Sizes:
``GPUVEC_BENCH_ONLINE_N`` (default 4e6, 256 MB; ``GPUVEC_BENCH_QUICK=1``: 2e5), chunks of 1e5 rows.
Both fits start from ``n_init=1``, ``random_state=0``. Results: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import gpuvec  # noqa: E402

QUICK = os.environ.get("GPUVEC_BENCH_QUICK", "") == "1"
N = int(float(os.environ.get("GPUVEC_BENCH_ONLINE_N", 2e5 if QUICK else 4e6)))
CHUNK = 100_000 if not QUICK else 20_000
D = K = 8


def _peak_mib():
    """The process's peak resident memory so far (VmHWM), MiB."""
    with open("/proc/self/status") as f:
        return int(f.read().split("VmHWM:")[1].split()[0]) / 1024


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident size
    except OSError:
        pass


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    centers = np.random.default_rng(0).normal(0, 6, (K, D))
    path = tmp_path_factory.mktemp("online") / "X.f64"
    X = np.memmap(path, dtype=np.float64, mode="w+", shape=(N, D))
    rng = np.random.default_rng(1)
    for s in range(0, N, CHUNK):  # written chunk by chunk: the file is never in memory whole
        n = min(CHUNK, N - s)
        X[s : s + n] = centers[rng.integers(0, K, n)] + rng.normal(size=(n, D))
    X.flush()
    del X
    held_out = centers[rng.integers(0, K, 20_000)] + rng.normal(size=(20_000, D))
    return path, held_out


def test_online_pass_against_dask_batch_fit(data):
    path, held_out = data
    X = np.memmap(path, dtype=np.float64, mode="r", shape=(N, D))
    rows = []
    gpuvec.GaussianMixture(K, random_state=0).fit(held_out[:2000])  # numba's loops loaded before either is timed

    _reset_peak()
    before = _peak_mib()
    t = time.perf_counter()
    online = gpuvec.GaussianMixture(K, random_state=0)
    with open(path, "rb") as f:  # plain reads, a chunk at a time (a memmap's pages would count as resident)
        while (chunk := np.fromfile(f, dtype=np.float64, count=CHUNK * D)).size:
            online.partial_fit(chunk.reshape(-1, D))
            if online.n_steps_ == 1:  # the first call loads numba's compiled loops (~110 MiB, once a process)
                first_call = _peak_mib() - before
                _reset_peak()
                before = _peak_mib()
    stream = _peak_mib() - before
    rows.append(("online, one pass", time.perf_counter() - t, 1, online.score(held_out), first_call))
    print(f"\nonline: peak growth over the {N // CHUNK - 1} chunks after the first: {stream:.0f} MiB")

    _reset_peak()
    before = _peak_mib()
    t = time.perf_counter()
    batch = gpuvec.GaussianMixture(K, random_state=0).fit(da.from_array(X, chunks=(CHUNK, D)))
    passes = int(batch.n_iter_) + 1  # the first pass (shift, checks, init sample), then one per iteration
    rows.append(("dask batch fit", time.perf_counter() - t, passes, batch.score(held_out), _peak_mib() - before))

    print(f"\nN = {N:,} x {D} ({N * D * 8 / 2**20:.0f} MiB on disk), K = {K}, chunks of {CHUNK:,} rows")
    print(f"{'method':<20} {'time':>9} {'passes':>7} {'held-out score':>15} {'peak growth':>12}")
    for name, seconds, n_passes, score, grown in rows:
        print(f"{name:<20} {seconds:8.2f}s {n_passes:>7} {score:>15.5f} {grown:>10.0f} MiB")
    assert rows[0][3] > rows[1][3] - 0.02  # one pass of online EM is as good as the batch fit here
