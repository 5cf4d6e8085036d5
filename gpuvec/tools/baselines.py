"""The seed's own code, as the askers and answerers wrote it (modernised only where numpy requires).

These are the baselines that gpuvec's benchmarks and tests compare against.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates

# --------------------------------------------------------------------------- rays

# The seed's 6x6 example, origin (3, 3), num=5, and the m_max/m_dist its question prints.
SEED_RAY_IMAGE = np.array(
    [
        [10, 10, 10, 10, 10, 10],
        [9, 9, 9, 10, 9, 9],
        [9, 8, 9, 10, 8, 9],
        [9, 7, 8, 0, 8, 9],
        [8, 7, 7, 8, 8, 9],
        [5, 6, 7, 7, 6, 7],
    ]
)
SEED_RAY_MAX = np.array(
    [
        [10, 10, 10, 10, 10, 10],
        [9, 9, 10, 10, 9, 9],
        [9, 9, 9, 10, 8, 9],
        [9, 8, 8, 0, 8, 9],
        [8, 8, 7, 8, 8, 9],
        [7, 7, 8, 8, 8, 8],
    ]
)
SEED_RAY_DIST = np.array(
    [
        [0, 0, 0, 0, 0, 0],
        [0, 0, 2, 0, 0, 0],
        [0, 2, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [0, 2, 0, 0, 0, 0],
        [1, 1, 2, 1, 2, 1],
    ]
)


def rays_seed_loop(m, origin_row, origin_col, num=5):
    """The asker's loop: one map_coordinates call per cell."""
    m_max = np.zeros(m.shape)
    m_dist = np.zeros(m.shape)
    rows, cols = m.shape
    for col in range(cols):
        for row in range(rows):
            x_plot = np.linspace(col, origin_col, num)
            y_plot = np.linspace(row, origin_row, num)
            interpolated_line = map_coordinates(m, np.vstack((y_plot, x_plot)), order=1, mode="nearest")
            m_max[row][col] = max(interpolated_line)
            m_dist[row][col] = np.argmax(interpolated_line)
    return m_max, m_dist


def rays_accepted_answer(
    m, origin_row, origin_col, num=5, *, order=1, mode="nearest", cval=0.0, map_coordinates=map_coordinates, xp=np
):
    """The accepted answer: map_coordinates on a (2, rows*cols*num) array, then max/argmax.

    ``order``/``mode``/``cval`` are passed through (the answer hard-codes order=1,
    mode='nearest'); ``map_coordinates``/``xp`` let the GPU benchmark run the same
    code through cupyx.
    """
    rows, cols = m.shape
    lin_col = np.array([np.linspace(i, origin_col, num) for i in range(cols)])
    lin_row = np.array([np.linspace(i, origin_row, num) for i in range(rows)])
    arr_vs = xp.asarray(np.vstack((np.tile(lin_row, cols).ravel(), np.tile(lin_col.ravel(), rows))))
    arr_map = map_coordinates(m, arr_vs, order=order, mode=mode, cval=cval).reshape(rows, cols, num)
    m_max = xp.max(arr_map, axis=-1)
    m_dist = xp.argmax(arr_map, axis=-1)
    return m_max, m_dist


def rays_dense_reference(m, origin, *, order=1, mode="nearest", cval=0.0):
    """Brute force for dense rays, one map_coordinates call per cell (any number of axes).

    The ray from cell x takes n = ceil(max_d |origin[d] - x[d]|) + 1 samples at
    ``np.linspace(x[d], origin[d], n)``; returns max, argmax and the coordinates of the max.
    """
    m_max = np.empty(m.shape, m.dtype)
    m_arg = np.empty(m.shape, np.int64)
    m_coords = np.empty((m.ndim,) + m.shape)
    for x in np.ndindex(m.shape):
        n = int(np.ceil(max(abs(o - xi) for o, xi in zip(origin, x)))) + 1
        pts = np.array([np.linspace(xi, o, n) for xi, o in zip(x, origin)])
        line = map_coordinates(m, pts, order=order, mode=mode, cval=cval)
        m_max[x], m_arg[x] = line.max(), line.argmax()
        m_coords[(slice(None),) + x] = pts[:, line.argmax()]
    return m_max, m_arg, m_coords


def rays_second_answer(img, ctr):
    """The seed's second answer: the max over every pixel of the discrete ray (nearest pixel),
    for 2-D or multichannel (H, W, C) images, with the offsets of the max (as posted)."""
    M, N, *d = img.shape
    aidx = 2 * (slice(None),) + (img.ndim - 2) * (None,)
    m, n = ctr
    out = np.empty_like(img)
    offsI = np.empty(img.shape, np.uint16)
    offsJ = np.empty(img.shape, np.uint16)
    img4, out4, I4, J4 = ((x[m:, n:], x[m:, n::-1], x[m::-1, n:], x[m::-1, n::-1]) for x in (img, out, offsI, offsJ))
    for i, o, y, x in zip(img4, out4, I4, J4):
        for _ in range(2):
            M, N, *d = i.shape
            widths = np.arange(1, M + 1, dtype=np.uint16).clip(None, N)
            I = np.arange(M, dtype=np.uint16).repeat(widths)  # noqa: E741 (the answer's own names)
            J = np.ones_like(I)
            J[0] = 0
            J[widths[:-1].cumsum()] -= widths[:-1]
            J = J.cumsum(dtype=np.uint16)
            ii = np.arange(1, 2 * M - 1, dtype=np.uint16) // 2
            II = ii.clip(None, I[:, None])
            jj = np.arange(2 * M - 2, dtype=np.uint32) // 2 * 2 + 1
            jj[0] = 0
            JJ = ((1 + jj) * J[:, None] // (2 * (I + 1))[:, None]).astype(np.uint16).clip(None, J[:, None])
            idx = i[II, JJ].argmax(axis=1)
            II, JJ = (np.take_along_axis(ZZ[aidx], idx[:, None], 1)[:, 0] for ZZ in (II, JJ))
            y[I, J], x[I, J] = II, JJ
            SH = II, JJ, *np.ogrid[tuple(map(slice, img.shape))][2:]
            o[I, J] = i[SH]
            i, o = i.swapaxes(0, 1), o.swapaxes(0, 1)
            y, x = x.swapaxes(0, 1), y.swapaxes(0, 1)
    return out, offsI, offsJ


# --------------------------------------------------------------------------- rotations


def is_rotation_seed(R):
    """The answer that checks R R^T = I and det R = 1 with allclose (np.float replaced by float)."""
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        return False
    should_be_identity = np.allclose(R.dot(R.T), np.identity(R.shape[0], float))
    should_be_one = np.allclose(np.linalg.det(R), 1)
    return should_be_identity and should_be_one


def is_rotation_batched_numpy(R, atol=1e-8):
    """What a user writes for a stack: matmul(R, R^T) + linalg.det + a tolerance test."""
    n = R.shape[-1]
    gram = np.matmul(R, np.swapaxes(R, -1, -2))
    ortho = np.abs(gram - np.eye(n)).max(axis=(-1, -2)) <= atol
    return ortho & (np.abs(np.linalg.det(R) - 1) <= atol)


# --------------------------------------------------------------------------- sampling


def normal_seed_loop(means, stds, n=1000):
    """The asker's loop: one np.random.normal call per sample set."""
    return np.stack([np.random.normal(means, stds) for _ in range(n)])


def mvn_cholesky_einsum(rng, mean, cov):
    """One draw from each of a stack of distributions, as a user batches it by hand:
    ``np.linalg.cholesky`` of the (B, d, d) stack and an ``einsum`` with standard normals."""
    L = np.linalg.cholesky(cov)
    return mean + np.einsum("bij,bj->bi", L, rng.standard_normal(mean.shape))


def normal_seed_broadcast(rng, means, stds, n=1000):
    """The answer: numpy's broadcast normal with size=(n, N, 3) (Generator API)."""
    return rng.normal(means, stds, size=(n,) + np.shape(means))


# --------------------------------------------------------------------------- mixtures


def seed_em_data():
    """The seed's data: two 2-D clusters at (0, 0) and (5, 5), np.random.seed(1)."""
    np.random.seed(1)
    X_11 = np.random.normal(0, 1, 1000)
    X_21 = np.random.normal(0, 1, 1000)
    X_12 = np.random.normal(5, 1, 1000)
    X_22 = np.random.normal(5, 1, 1000)
    X_1 = np.concatenate((X_11, X_12), axis=None)
    X_2 = np.concatenate((X_21, X_22), axis=None)
    return np.concatenate((np.array([X_1]), np.array([X_2])), axis=0)  # (2, 2000), as the seed has it
