"""ray_max's numba loops outside one plain process: the on-disk cache loaded by a new process, a thread
pool, forked children (each in a subprocess)."""

from __future__ import annotations

import os

import pytest


def test_numba_cache_is_loaded_by_a_new_process(tmp_path):
    pytest.importorskip("numba")
    import subprocess
    import sys

    script = (
        "import numpy as np, gpuvec; from gpuvec.rays import _numba as m\n"
        "img = np.ones((4, 5), np.float32)\n"
        "for num in (3, m.CELL_LOOP_MAX_NUM + 1, None): gpuvec.ray_max(img, (1, 2), num)\n"
        "print(sum(sum(f.stats.cache_hits.values()) for f in (m.cells_loop, m.rows_loop, m.dense_loop)))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), GPUVEC_JIT="1")
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert runs == ["0", "3"], runs  # the first process compiles and saves; the second loads the three loops


def _run_script(script, **env):
    import subprocess
    import sys

    env = dict(os.environ, GPUVEC_JIT="1", **env)
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)


def test_numba_loops_from_a_thread_pool_give_the_main_threads_results():
    """Pool threads run the numba loops one thread each, concurrently (no numba threading layer is
    involved: its 'workqueue' layer aborted the process on concurrent parallel launches)."""
    pytest.importorskip("numba")
    script = (
        "import numpy as np, gpuvec\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "img = np.random.default_rng(0).random((60, 50))\n"
        "def call(i):  # both fixed-num loops and the dense loop\n"
        "    return gpuvec.ray_max(img, (i, 4), num=(5, 12, None)[i % 3])[0]\n"
        "with ThreadPoolExecutor(4) as ex:\n"
        "    pooled = list(ex.map(call, range(18)))\n"
        "print(all(np.array_equal(p, call(i)) for i, p in enumerate(pooled)))\n"
    )
    run = _run_script(script, NUMBA_THREADING_LAYER="workqueue")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["True"]


def test_numba_loops_run_in_forked_children_after_the_parent_ran_them():
    """multiprocessing's fork after a ray_max call (numba's OpenMP layer made such children abort)."""
    pytest.importorskip("numba")
    script = (
        "import multiprocessing as mp, numpy as np, gpuvec\n"
        "img = np.random.default_rng(0).random((60, 50))\n"
        "def call(i):  # both fixed-num loops and the dense loop\n"
        "    return float(gpuvec.ray_max(img, (i, 4), num=(5, 12, None)[i % 3])[0].sum())\n"
        "if __name__ == '__main__':\n"
        "    here = [call(i) for i in range(6)]\n"
        "    with mp.get_context('fork').Pool(2) as pool:\n"
        "        print(pool.map(call, range(6)) == here)\n"
    )
    run = _run_script(script)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["True"]
