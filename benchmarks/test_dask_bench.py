"""Dask benchmarks (issue 15): ray_max on an image read from zarr, and the fixed cost of one dask pass.

``python -m pytest benchmarks/test_dask_bench.py`` (not in the default test run: benchmarks/ is not in
testpaths). ``GPUVEC_BENCH_QUICK=1`` shrinks the image from 8000x8000 (1000x1000 chunks) to 2000x2000
(500x500). Every case records, in ``extra_info``, what it ran on; the ray_max cases also record the input
each output block reads per cell of its own (``read_ratio_mean``/``_max``). The cluster case starts a
2-process ``LocalCluster`` (2 workers x 1 thread) once per module and records each worker's peak RSS above
its start. Compare ratios taken in one run: the machine may be shared.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import gpuvec

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
zarr = pytest.importorskip("zarr")

QUICK = os.environ.get("GPUVEC_BENCH_QUICK", "") == "1"
SIZE, CHUNK = (2000, 500) if QUICK else (8000, 1000)
ORIGIN = (0.3125375 * SIZE, 0.7126 * SIZE)  # (2500.3, 5700.8) at 8000


@pytest.fixture(scope="module")
def image_store(tmp_path_factory):
    """An image written to a zarr store in CHUNK x CHUNK chunks, and the same image in memory."""
    path = tmp_path_factory.mktemp("dask_bench") / "image.zarr"
    image = np.random.default_rng(0).random((SIZE, SIZE), dtype=np.float32)
    store = zarr.open_array(str(path), mode="w", shape=image.shape, chunks=(CHUNK, CHUNK), dtype=image.dtype)
    store[...] = image
    gpuvec.ray_max(image[:600, :600], ORIGIN, 5)  # loads numba once, outside the timings
    return path, image


def _record_reads(benchmark):
    from gpuvec.rays._dask import read_ratios

    ratios = read_ratios((SIZE, SIZE), ((CHUNK,) * (SIZE // CHUNK),) * 2, ORIGIN, 5)
    benchmark.extra_info.update(
        size=SIZE, chunk=CHUNK, read_ratio_mean=float(ratios.mean()), read_ratio_max=float(ratios.max())
    )


def _store_both(x, out_dir, suffix=""):
    best, arg = gpuvec.ray_max(x, ORIGIN, 5)
    writes = [
        da.to_zarr(best, str(out_dir / f"max{suffix}.zarr"), overwrite=True, compute=False),
        da.to_zarr(arg, str(out_dir / f"arg{suffix}.zarr"), overwrite=True, compute=False),
    ]
    dask.compute(*writes)


def test_ray_max_in_memory(benchmark, image_store):
    _, image = image_store
    benchmark.group = f"dask ray_max {SIZE}"
    benchmark.extra_info.update(method="in memory, whole image")
    benchmark.pedantic(lambda: gpuvec.ray_max(image, ORIGIN, 5), rounds=3, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("scheduler", ["threads", "synchronous"])
def test_ray_max_zarr_to_zarr(benchmark, image_store, scheduler):
    path, image = image_store
    x = da.from_zarr(str(path))
    benchmark.group = f"dask ray_max {SIZE}"
    benchmark.extra_info.update(method=f"zarr -> ray_max -> zarr, {scheduler} scheduler")
    _record_reads(benchmark)
    with dask.config.set(scheduler=scheduler):
        benchmark.pedantic(lambda: _store_both(x, path.parent), rounds=3 if scheduler == "threads" else 1, iterations=1)
    got = zarr.open_array(str(path.parent / "max.zarr"), mode="r")[...]
    assert np.array_equal(got, gpuvec.ray_max(image, ORIGIN, 5)[0])


@pytest.fixture(scope="module")
def cluster_client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(
            lambda: gpuvec.ray_max(np.ones((600, 600), np.float32), (1.0, 1.0), 5)
        )  # numba loaded in the workers
        yield client


def _rss():
    import psutil

    return psutil.Process().memory_info().rss


def test_ray_max_zarr_to_zarr_local_cluster(benchmark, image_store, cluster_client):
    path, _ = image_store
    x = da.from_zarr(str(path))
    base = cluster_client.run(_rss)
    peaks, stop = dict(base), threading.Event()

    def poll():
        while not stop.is_set():
            for worker, rss in cluster_client.run(_rss).items():
                peaks[worker] = max(peaks[worker], rss)
            time.sleep(0.1)

    sampler = threading.Thread(target=poll)
    sampler.start()
    try:
        benchmark.group = f"dask ray_max {SIZE}"
        benchmark.extra_info.update(method="zarr -> ray_max -> zarr, LocalCluster 2 processes x 1 thread")
        _record_reads(benchmark)
        benchmark.pedantic(lambda: _store_both(x, path.parent, "_cluster"), rounds=3, iterations=1)
    finally:
        stop.set()
        sampler.join()
    benchmark.extra_info["worker_peak_mib_above_start"] = [round((peaks[w] - base[w]) / 2**20) for w in base]
    benchmark.extra_info["image_share_mib"] = SIZE * SIZE * 4 / 2 / 2**20


@pytest.mark.parametrize("where", ["in memory", "threads", "synchronous", "local cluster"])
def test_fixed_cost_of_one_pass(benchmark, where, request):
    """is_rotation of 1000 matrices in 4 blocks: all scheduling, next to no work."""
    R = np.tile(np.eye(3), (1000, 1, 1))
    x = da.from_array(R, chunks=(250, 3, 3))
    benchmark.group = "dask fixed cost per pass"
    benchmark.extra_info.update(method=where)
    if where == "in memory":
        fn = lambda: gpuvec.is_rotation(R)  # noqa: E731
    elif where == "local cluster":
        client = request.getfixturevalue("cluster_client")
        fn = lambda: client.compute(gpuvec.is_rotation(x), sync=True)  # noqa: E731
    else:
        fn = lambda: gpuvec.is_rotation(x).compute(scheduler=where)  # noqa: E731
    benchmark.pedantic(fn, rounds=20, iterations=1, warmup_rounds=2)
