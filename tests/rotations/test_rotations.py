"""is_rotation, rotation_residuals, nearest_rotation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gpuvec
from gpuvec import rotations
from gpuvec._core import dispatch
from tests.helpers import assert_namespace, to_np

PERMUTATION = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]])


REFLECTION = np.diag([-1, 1, 1])


def random_rotations(rng, batch, n, dtype=np.float64):
    Q, Rr = np.linalg.qr(rng.normal(size=batch + (n, n)))
    Q = Q * np.sign(np.diagonal(Rr, axis1=-2, axis2=-1))[..., None, :]
    Q[..., :, 0] *= np.sign(np.linalg.det(Q))[..., None]  # proper
    return Q.astype(dtype)


def test_seed_permutation_is_rotation(xp):
    result = gpuvec.is_rotation(xp.asarray(PERMUTATION))
    assert_namespace(result, xp, bool, ())
    assert bool(result)


def test_reflection_is_not_rotation(xp):
    assert not bool(gpuvec.is_rotation(xp.asarray(REFLECTION)))
    assert bool(gpuvec.is_rotation(xp.asarray(REFLECTION), proper=False))


def test_scaled_identity_is_rejected_without_relative_slack(xp):
    # np.allclose(R @ R.T, I) accepts this through its rtol.
    assert np.allclose(1.000002 * np.eye(3) @ (1.000002 * np.eye(3)).T, np.eye(3))
    assert not bool(gpuvec.is_rotation(xp.asarray(1.000002 * np.eye(3))))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_random_rotations_accepted_and_perturbed_rejected(xp, n, dtype):
    rng = np.random.default_rng(n)
    R = random_rotations(rng, (5, 4), n, dtype)
    ok = gpuvec.is_rotation(xp.asarray(R))
    assert_namespace(ok, xp, bool, (5, 4))
    assert bool(ok.all())
    bad = R.copy()
    bad[..., 0, 0] += 100 * rotations.default_atol(n, dtype)
    assert not bool(gpuvec.is_rotation(xp.asarray(bad)).any())
    if n > 1:  # a reflection is orthogonal, det -1
        refl = R.copy()
        refl[..., 0, :] *= -1
        assert not bool(gpuvec.is_rotation(xp.asarray(refl)).any())
        assert bool(gpuvec.is_rotation(xp.asarray(refl), proper=False).all())


@pytest.mark.parametrize("n", [2, 3, 5])
def test_residuals_match_matmul_and_det(xp, n):
    M = np.random.default_rng(0).normal(size=(50, n, n))
    res = gpuvec.rotation_residuals(xp.asarray(M))
    assert_namespace(res.orthogonality, xp, np.float64, (50,))
    want_err = np.abs(M @ np.swapaxes(M, -1, -2) - np.eye(n)).max(axis=(-1, -2))
    np.testing.assert_allclose(to_np(res.orthogonality), want_err, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(to_np(res.det), np.linalg.det(M), rtol=1e-12, atol=1e-12)


def test_default_tolerances_scale_with_dtype():
    assert 1e-12 < rotations.default_atol(3, np.float64) < 1e-10
    assert 1e-6 < rotations.default_atol(3, np.float32) < 1e-4


def test_float32_is_checked_in_float32(xp):
    R = random_rotations(np.random.default_rng(1), (100,), 3, np.float32)
    res = gpuvec.rotation_residuals(xp.asarray(R))
    assert res.orthogonality.dtype == np.float32
    assert bool(gpuvec.is_rotation(xp.asarray(R)).all())


def test_integers_are_exact(xp):
    assert gpuvec.rotation_residuals(xp.asarray(PERMUTATION)).det.dtype == np.float64
    assert bool(gpuvec.is_rotation(xp.asarray(PERMUTATION.astype(np.int8)), atol=0.0))


def test_nan_and_inf_are_silently_not_rotations(xp):
    R = np.stack([np.eye(3)] * 4)
    R[1, 0, 0] = np.nan
    R[2, 2, 1] = np.inf
    R[3, 1, 1] = -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = gpuvec.is_rotation(xp.asarray(R))
    assert to_np(result).tolist() == [True, False, False, False]


def test_empty_batch_and_leading_shape(xp):
    assert_namespace(gpuvec.is_rotation(xp.zeros((0, 3, 3))), xp, bool, (0,))
    assert_namespace(gpuvec.is_rotation(xp.zeros((2, 0, 4, 4))), xp, bool, (2, 0))


@pytest.mark.parametrize("shape", [(3,), (3, 2), (4, 3, 2), ()])
def test_non_square_is_value_error_naming_shape(shape):
    with pytest.raises(ValueError, match=re_escape(str(shape))):
        gpuvec.is_rotation(np.zeros(shape))


def re_escape(s):
    import re

    return re.escape(s)


def test_atol_validated():
    with pytest.raises(ValueError, match="atol must be >= 0"):
        gpuvec.is_rotation(np.eye(3), atol=-1)
    with pytest.raises(TypeError, match="atol must be a real number"):
        gpuvec.is_rotation(np.eye(3), atol="tight")


def test_chunked_cpu_path_covers_partial_chunks(monkeypatch):
    monkeypatch.setitem(dispatch._CHUNK_ELEMENTS, "rotations", (7, 7))
    R = random_rotations(np.random.default_rng(2), (30,), 3)
    R[13, 0, 0] = 2
    assert to_np(gpuvec.is_rotation(R)).sum() == 29


@pytest.mark.parametrize("n", [2, 3, 4])
def test_nearest_rotation_is_a_rotation_and_fixes_rotations(xp, n):
    rng = np.random.default_rng(n)
    M = rng.normal(size=(20, n, n))
    R = gpuvec.nearest_rotation(xp.asarray(M))
    assert_namespace(R, xp, np.float64, (20, n, n))
    assert bool(gpuvec.is_rotation(R).all())
    Q = random_rotations(rng, (20,), n)
    np.testing.assert_allclose(to_np(gpuvec.nearest_rotation(xp.asarray(Q))), Q, atol=1e-12)


@pytest.mark.skipif(
    tuple(int(p) for p in __import__("scipy").__version__.split(".")[:2]) < (1, 15),
    reason="scipy < 1.15's Rotation.from_matrix answers differently for non-orthogonal input (checked: 1.10-1.14)",
)
def test_nearest_rotation_agrees_with_scipy_rotation():
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(7)
    Q = random_rotations(rng, (50,), 3)
    M = Q + 0.05 * rng.normal(size=Q.shape)
    ours = gpuvec.nearest_rotation(M)
    theirs = Rotation.from_matrix(M).as_matrix()
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_nearest_rotation_rejects_non_finite():
    with pytest.raises(ValueError, match="finite"):
        gpuvec.nearest_rotation(np.full((3, 3), np.nan))


def test_empty_0x0_matrices_are_rotations(xp):
    R = xp.zeros((4, 0, 0))
    res = gpuvec.rotation_residuals(R)
    assert to_np(res.orthogonality).tolist() == [0.0] * 4 and to_np(res.det).tolist() == [1.0] * 4
    assert to_np(gpuvec.is_rotation(R)).all()
    assert gpuvec.nearest_rotation(R).shape == (4, 0, 0)


def test_float16_rotations_are_judged_at_float16_precision(xp):
    from scipy.spatial.transform import Rotation

    R = Rotation.random(50, random_state=1).as_matrix()
    R16 = xp.asarray(R.astype(np.float16))
    assert to_np(gpuvec.is_rotation(R16)).all()  # float64's 5.5e-12 would reject every one
    assert not to_np(gpuvec.is_rotation(xp.asarray((1.05 * R).astype(np.float16)))).any()
    assert gpuvec.rotation_residuals(R16).det.dtype == np.float32


def test_big_endian_stack_is_checked_like_native():
    R = np.stack([np.eye(3), np.diag([1.0, 1.0, -1.0])])
    assert gpuvec.is_rotation(R.astype(">f8")).tolist() == [True, False]


def test_proper_must_be_a_bool():
    with pytest.raises(TypeError, match="proper must be True or False; got 'no'"):
        gpuvec.is_rotation(np.eye(3), proper="no")


def test_overflow_of_finite_entries_is_inf_and_nonfinite_entries_nan():
    for n in (2, 3, 4):
        for dtype, big in ((np.float64, 1e200), (np.float32, 1e20)):
            res = gpuvec.rotation_residuals(np.eye(n, dtype=dtype) * dtype(big))
            assert np.isposinf(res.orthogonality), (n, dtype)
        assert np.isnan(gpuvec.rotation_residuals(np.eye(n) * np.nan).orthogonality)
        assert np.isnan(gpuvec.rotation_residuals(np.where(np.eye(n) > 0, np.inf, 0.0)).orthogonality)
    with pytest.raises(TypeError, match="M must have a real dtype of at most 64 bits"):
        gpuvec.nearest_rotation(np.eye(3, dtype=np.longdouble))
