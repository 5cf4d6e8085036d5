"""GaussianMixture hardening (issue 13): no silent wrong answer, every bad input named, sklearn's behaviour."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import gpuvec
from gpuvec import mixture
from tests.helpers import assert_namespace, to_np

sklearn_mixture = pytest.importorskip("sklearn.mixture")
COV_TYPES = ["full", "tied", "diag", "spherical"]


def two_blobs(rng, n=60, d=2):
    return np.concatenate([rng.normal(0, 1, (n, d)), rng.normal(4, 1.5, (n, d))])


def batch(seed=0, B=3, n=30, d=2):
    rng = np.random.default_rng(seed)
    return np.stack([two_blobs(rng, n, d) for _ in range(B)])


def quiet_fit(gm, X, **kw):
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # sklearn's, and gpuvec's subclass of it
        return gm.fit(X, **kw)


# --------------------------------------------------------------------------- bic / aic take N from the validated X


@pytest.mark.parametrize("criterion", ["bic", "aic"])
def test_criteria_of_nested_list_batch_equal_those_of_the_array(criterion):
    Xb = batch()  # (3, 60, 2)
    gm = gpuvec.GaussianMixture(2, random_state=0).fit(Xb)
    want = getattr(gm, criterion)(Xb)
    np.testing.assert_allclose(getattr(gm, criterion)(Xb.tolist()), want, rtol=1e-12)
    np.testing.assert_allclose(getattr(gm, criterion)(list(Xb)), want, rtol=1e-12)  # a list of arrays


@pytest.mark.parametrize("criterion", ["bic", "aic"])
def test_criteria_of_nested_list_equal_sklearn(criterion):
    X = two_blobs(np.random.default_rng(1))
    sk = sklearn_mixture.GaussianMixture(2, random_state=0).fit(X)
    start = {"weights_init": sk.weights_, "means_init": sk.means_, "precisions_init": sk.precisions_}
    gm = gpuvec.GaussianMixture(2, max_iter=0, **start).fit(X)
    sk0 = quiet_fit(sklearn_mixture.GaussianMixture(2, max_iter=1, **start), X)  # one step from the same start
    gm1 = quiet_fit(gpuvec.GaussianMixture(2, max_iter=1, **start), X)
    np.testing.assert_allclose(getattr(gm1, criterion)(X.tolist()), getattr(sk0, criterion)(X), rtol=1e-10)
    assert np.isfinite(getattr(gm, criterion)(X.tolist()))


# --------------------------------------------------------------------------- non-finite starts and fits


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["weights_init", "means_init", "precisions_init"])
@pytest.mark.parametrize("ct", COV_TYPES)
def test_non_finite_initial_parameter_is_refused_by_name(name, bad, ct):
    X = two_blobs(np.random.default_rng(2))
    K, D = 2, 2
    good = {
        "weights_init": np.full(K, 0.5),
        "means_init": np.zeros((K, D)),
        "precisions_init": {
            "full": np.stack([np.eye(D)] * K),
            "tied": np.eye(D),
            "diag": np.ones((K, D)),
            "spherical": np.ones(K),
        }[ct],
    }
    value = good[name].copy()
    value.flat[-1] = bad
    with pytest.raises(ValueError, match=rf"{name} must be finite"):
        gpuvec.GaussianMixture(K, covariance_type=ct, **{name: value}).fit(X)


def test_non_finite_initial_means_in_a_batch_name_the_problem():
    Xb = batch(B=4)
    means = np.zeros((4, 2, 2))
    means[2, 1, 0] = np.inf
    with pytest.raises(ValueError, match=r"means_init must be finite.*problems \[2\]"):
        gpuvec.GaussianMixture(2, means_init=means).fit(Xb)


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("scale", [1e160, 1e200])
def test_data_that_overflows_raises_instead_of_predicting(ct, scale):
    X = two_blobs(np.random.default_rng(3)) * scale
    gm = gpuvec.GaussianMixture(2, covariance_type=ct, random_state=0)
    with pytest.raises(ValueError, match="overflow.*scale the input data"):
        gm.fit(X)
    with pytest.raises(Exception, match="not fitted"):
        gm.predict(X)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_zero_weight_padding_row_that_would_overflow_is_ignored(ct):
    """It raised an overflow failure naming the problem; a zero-weight row now touches no statistic."""
    Xb = batch(B=3)
    Xb[1, -1] = 1e200  # a padding row of problem 1
    sw = np.ones(Xb.shape[:2])
    sw[1, -1] = 0
    padded = gpuvec.GaussianMixture(2, covariance_type=ct, random_state=0).fit(Xb, sample_weight=sw)
    Xb[1, -1] = 0.0
    modest = gpuvec.GaussianMixture(2, covariance_type=ct, random_state=0).fit(Xb, sample_weight=sw)
    np.testing.assert_allclose(padded.means_, modest.means_, atol=1e-10)
    np.testing.assert_allclose(padded.lower_bound_, modest.lower_bound_, rtol=1e-12)


def test_overflow_from_an_explicit_start_also_raises():
    X = two_blobs(np.random.default_rng(4))
    X[0] = 1e200
    start = {"weights_init": [0.5, 0.5], "means_init": [[0.0, 0.0], [4.0, 4.0]], "precisions_init": [np.eye(2)] * 2}
    with pytest.raises(ValueError, match="overflow"):
        gpuvec.GaussianMixture(2, **start).fit(X)


# --------------------------------------------------------------------------- reg_covar: sklearn's error at 0, a warning


@pytest.mark.parametrize("ct", ["full", "tied", "diag"])
def test_reg_covar_zero_with_a_constant_feature_raises_like_sklearn(ct):
    X = two_blobs(np.random.default_rng(5))
    X[:, 1] = 3.0
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        sklearn_mixture.GaussianMixture(2, covariance_type=ct, reg_covar=0, random_state=0).fit(X)
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        gpuvec.GaussianMixture(2, covariance_type=ct, reg_covar=0, random_state=0).fit(X)


def test_reg_covar_zero_failure_in_a_batch_names_only_the_failing_problems():
    Xb = batch(B=4)
    Xb[[1, 3], :, 1] = 0.0
    with pytest.raises(ValueError, match=r"ill-defined empirical covariance.*in problems \[1, 3\]"):
        gpuvec.GaussianMixture(2, reg_covar=0, random_state=0).fit(Xb)


def test_reg_covar_zero_on_good_data_fits_without_warning():
    X = two_blobs(np.random.default_rng(6))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm = gpuvec.GaussianMixture(2, reg_covar=0, random_state=0, tol=1e-6, max_iter=500).fit(X)
    assert gm.reg_covar_ == 0


def test_raised_reg_covar_is_warned_with_the_new_value_unbatched():
    X = two_blobs(np.random.default_rng(7))
    X[:, 1] = X[:, 0]  # a singular covariance below 1e-15 of regularisation
    with pytest.warns(UserWarning, match=r"reg_covar raised from 1e-16 to 1e-15\b"):
        gm = gpuvec.GaussianMixture(2, reg_covar=1e-16, random_state=0).fit(X)
    assert gm.reg_covar_ == 1e-15


def test_warm_refit_goes_on_with_the_raised_reg_covar_without_warning_again():
    X = two_blobs(np.random.default_rng(7))
    X[:, 1] = X[:, 0]
    gm = gpuvec.GaussianMixture(2, reg_covar=1e-16, random_state=0, warm_start=True)
    with pytest.warns(UserWarning, match="reg_covar raised"):
        gm.fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm.fit(X)
    assert gm.reg_covar_ == 1e-15


def test_unchanged_reg_covar_is_not_warned():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm = gpuvec.GaussianMixture(2, random_state=0, tol=1e-6, max_iter=500).fit(batch())
    assert (gm.reg_covar_ == 1e-6).all()


# --------------------------------------------------------------------------- warm starts keep the lower bound


def test_warm_start_one_iteration_at_a_time_converges():
    X = two_blobs(np.random.default_rng(8))
    gm = gpuvec.GaussianMixture(2, warm_start=True, max_iter=1, random_state=0)
    fits = 0
    while not (fits and gm.converged_):
        quiet_fit(gm, X)
        fits += 1
        assert fits < 100
    assert gm.n_iter_ == 1 and len(gm.lower_bounds_) == 1


def test_warm_start_one_iteration_at_a_time_converges_batched():
    gm = gpuvec.GaussianMixture(2, warm_start=True, max_iter=1, random_state=0)
    Xb = batch(B=4)
    bounds = []
    fits = 0
    while not (fits and bool(gm.converged_.all())):
        quiet_fit(gm, Xb)
        bounds.append(gm.lower_bound_.copy())
        fits += 1
        assert fits < 100
    assert np.all(np.diff(np.array(bounds), axis=0) >= -1e-9)  # EM across fits: never decreasing


def test_warm_start_in_steps_matches_one_long_fit():
    X = two_blobs(np.random.default_rng(9))
    one = gpuvec.GaussianMixture(2, random_state=0, max_iter=100, tol=1e-4).fit(X)
    warm = gpuvec.GaussianMixture(2, random_state=0, warm_start=True, max_iter=1, tol=1e-4)
    for _ in range(one.n_iter_):
        quiet_fit(warm, X)
    assert warm.converged_
    np.testing.assert_allclose(warm.means_, one.means_, rtol=1e-12)


def test_fit_em_previous_lower_bound_decides_convergence_of_the_first_iteration():
    X = batch(B=2)
    gm = gpuvec.GaussianMixture(2, random_state=0, tol=1e-8, max_iter=500).fit(X)
    start = mixture.MixtureParams(gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_)
    cold = mixture.fit_em(X, start, 1e-6, "full", tol=1e-6, max_iter=1)
    warm = mixture.fit_em(X, start, 1e-6, "full", tol=1e-6, max_iter=1, lower_bound=gm.lower_bound_)
    assert not cold.converged.any() and warm.converged.all()


# --------------------------------------------------------------------------- float32 keeps float32 attributes


@pytest.mark.parametrize("ct", COV_TYPES)
def test_float32_input_gives_float32_attributes_as_sklearn(xp, ct):
    X = two_blobs(np.random.default_rng(10)).astype(np.float32)
    sk = sklearn_mixture.GaussianMixture(2, covariance_type=ct, random_state=0).fit(X)
    gm = gpuvec.GaussianMixture(2, covariance_type=ct, random_state=0).fit(xp.asarray(X))
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert_namespace(getattr(gm, name), xp, getattr(sk, name).dtype, getattr(sk, name).shape)
    assert_namespace(gm.predict_proba(xp.asarray(X)), xp, np.float32, (120, 2))
    assert_namespace(gm.score_samples(xp.asarray(X)), xp, np.float32, (120,))
    assert_namespace(gm.score_samples(xp.asarray(X, dtype=np.float64)), xp, np.float64, (120,))
    g64 = gpuvec.GaussianMixture(2, covariance_type=ct, random_state=0).fit(xp.asarray(X, dtype=np.float64))
    assert abs(gm.lower_bound_ - g64.lower_bound_) <= 1e-9 * abs(g64.lower_bound_)  # EM ran in float64


def test_float32_batch_keeps_float32_and_warm_refit_works():
    Xb = batch().astype(np.float32)
    gm = gpuvec.GaussianMixture(2, random_state=0, warm_start=True).fit(Xb)
    assert gm.means_.dtype == np.float32 and gm.lower_bound_.dtype == np.float64
    gm.fit(Xb)
    assert gm.means_.dtype == np.float32 and gm.converged_.all()


# --------------------------------------------------------------------------- ConvergenceWarning is sklearn's


def test_convergence_warning_is_caught_by_sklearn_filters():
    from sklearn.exceptions import ConvergenceWarning

    assert issubclass(mixture.ConvergenceWarning, ConvergenceWarning)
    assert mixture.ConvergenceWarning is mixture.ConvergenceWarning
    X = two_blobs(np.random.default_rng(11))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ConvergenceWarning, match="did not converge"):
            gpuvec.GaussianMixture(3, max_iter=1, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        gpuvec.GaussianMixture(3, max_iter=1, random_state=0).fit(X)


_FIRST_WARNING = """
import sys, warnings
import numpy as np, gpuvec
X = np.random.default_rng(0).normal(size=(200, 2))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    gpuvec.GaussianMixture(3, max_iter=1, random_state=0).fit(X)
assert "sklearn" not in sys.modules, "the warning imported sklearn"
assert [(w.category.__name__, w.category.__module__) for w in caught] == [("ConvergenceWarning", "gpuvec.mixture")]
assert issubclass(caught[0].category, UserWarning)
from sklearn.exceptions import ConvergenceWarning
warnings.simplefilter("error", ConvergenceWarning)
try:
    gpuvec.GaussianMixture(3, max_iter=1, random_state=0).fit(X)
except ConvergenceWarning:
    print("caught")
"""


def test_a_fit_stopping_at_max_iter_does_not_import_sklearn():
    """In a new process the warning does without sklearn's class (importing sklearn took 1-2 s); once sklearn
    is imported, its filters catch gpuvec's warning."""
    pytest.importorskip("sklearn")
    out = subprocess.run([sys.executable, "-c", _FIRST_WARNING], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "caught"


def test_convergence_warning_is_importable_by_name():
    from gpuvec.mixture import ConvergenceWarning

    assert issubclass(ConvergenceWarning, UserWarning) and ConvergenceWarning.__module__ == "gpuvec.mixture"
    with pytest.raises(AttributeError, match="no attribute 'Bogus'"):
        mixture.Bogus  # noqa: B018


# --------------------------------------------------------------------------- precisions_cholesky_ from precisions_init


@pytest.mark.parametrize("ct", COV_TYPES)
def test_precisions_cholesky_from_precisions_init_is_sklearns(xp, ct):
    from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky_from_precisions

    rng = np.random.default_rng(12)
    X = two_blobs(rng, d=3)
    A = rng.normal(size=(2, 3, 3))
    full = A @ np.swapaxes(A, 1, 2) + np.eye(3)
    prec = {"full": full, "tied": full[0], "diag": rng.random((2, 3)) + 0.5, "spherical": rng.random(2) + 0.5}[ct]
    want = _compute_precision_cholesky_from_precisions(prec, ct, xp=np)
    gm = gpuvec.GaussianMixture(2, covariance_type=ct, precisions_init=xp.asarray(prec), max_iter=0, random_state=0)
    gm.fit(xp.asarray(X))
    got = to_np(gm.precisions_cholesky_)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(to_np(gm.precisions_), prec, rtol=1e-12)
    if ct in ("full", "tied"):
        assert np.allclose(got, np.triu(got))  # upper triangular, like the factors EM computes


def test_sample_after_a_fit_from_precisions_init():
    rng = np.random.default_rng(13)
    X = two_blobs(rng, d=3)
    A = rng.normal(size=(2, 3, 3))
    prec = A @ np.swapaxes(A, 1, 2) + np.eye(3)
    for max_iter in (0, 5):
        gm = gpuvec.GaussianMixture(2, precisions_init=prec, means_init=[[0, 0, 0], [4, 4, 4]], weights_init=[0.5, 0.5])
        quiet_fit(gm.set_params(max_iter=max_iter), X)
        S, _ = gm.sample(50)
        assert S.shape == (50, 3) and np.isfinite(S).all()
    np.testing.assert_allclose(gm.covariances_, np.swapaxes(gm.covariances_, 1, 2), rtol=1e-12)


# --------------------------------------------------------------------------- n_init contains the n_init=1 start


@pytest.mark.parametrize("init", mixture.INIT_PARAMS)
def test_more_starts_never_end_worse_than_one(init):
    Xb = batch(seed=14, B=5, n=40)
    for seed in range(3):
        kw = {"init_params": init, "random_state": seed, "max_iter": 10, "tol": 1e-8}
        one = quiet_fit(gpuvec.GaussianMixture(3, **kw), Xb)
        many = quiet_fit(gpuvec.GaussianMixture(3, n_init=4, **kw), Xb)
        assert np.all(many.lower_bound_ >= one.lower_bound_ - 1e-9 * np.abs(one.lower_bound_))


def test_first_of_n_init_starts_is_the_single_start():
    X = two_blobs(np.random.default_rng(15))
    one = quiet_fit(gpuvec.GaussianMixture(3, init_params="random", random_state=7, max_iter=0), X)
    many = quiet_fit(gpuvec.GaussianMixture(3, init_params="random", random_state=7, max_iter=0, n_init=5), X)
    # With max_iter=0 every lower bound is -inf: the tie goes to the first start, the n_init=1 one.
    np.testing.assert_array_equal(many.means_, one.means_)


# --------------------------------------------------------------------------- verbose_interval


def test_verbose_interval_prints_every_nth_iteration(capsys):
    X = two_blobs(np.random.default_rng(16))
    quiet_fit(gpuvec.GaussianMixture(2, verbose=1, verbose_interval=3, max_iter=7, tol=0.0, random_state=0), X)
    lines = [ln.strip() for ln in capsys.readouterr().out.splitlines() if "Iteration" in ln]
    assert [ln.split(":")[0] for ln in lines] == ["Iteration 3", "Iteration 6"]


def test_verbose_two_prints_timing(capsys):
    X = two_blobs(np.random.default_rng(16))
    quiet_fit(gpuvec.GaussianMixture(2, verbose=2, verbose_interval=1, max_iter=2, tol=0.0, random_state=0), X)
    out = capsys.readouterr().out
    assert out.count("time lapse") == 2 and "ll change" in out


def test_verbose_interval_is_a_parameter_and_checked():
    from sklearn.base import clone

    gm = gpuvec.GaussianMixture(2, verbose_interval=5)
    assert gm.get_params()["verbose_interval"] == 5 and clone(gm).verbose_interval == 5
    assert "verbose_interval" in sklearn_mixture.GaussianMixture().get_params()
    with pytest.raises(ValueError, match=r"verbose_interval must be an integer in \[1, inf\]"):
        gpuvec.GaussianMixture(2, verbose_interval=0).fit(two_blobs(np.random.default_rng(0)))


# --------------------------------------------------------------------------- sample_weight of the wrong shape


@pytest.mark.parametrize(
    "shape,batched,match",
    [
        ((119,), False, r"sample_weight must have shape \(n_samples,\) = \(120,\) to match X; got shape \(119,\)"),
        ((1, 120), False, r"\(n_samples,\) = \(120,\) to match X; got shape \(1, 120\)"),
        ((121,), True, r"\(n_samples,\) = \(60,\) or \(B, n_samples\) = \(3, 60\) to match X; got shape \(121,\)"),
        ((2, 60), True, r"\(B, n_samples\) = \(3, 60\) to match X; got shape \(2, 60\)"),
        ((3, 60, 1), True, r"got shape \(3, 60, 1\)"),
    ],
)
def test_sample_weight_of_wrong_shape_is_named_with_both_shapes(shape, batched, match):
    X = batch() if batched else two_blobs(np.random.default_rng(17))
    with pytest.raises(ValueError, match=match):
        gpuvec.GaussianMixture(2).fit(X, sample_weight=np.ones(shape))


def test_sample_weight_of_strings_is_a_type_error():
    with pytest.raises(TypeError, match="sample_weight must be a real numeric array"):
        gpuvec.GaussianMixture(2).fit(two_blobs(np.random.default_rng(17)), sample_weight=["a"] * 120)


# --------------------------------------------------------------------------- nothing mutates its inputs


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_and_predict_leave_their_inputs_unchanged(ct, dtype):
    rng = np.random.default_rng(18)
    Xb = batch(B=2).astype(dtype)
    sw = rng.random(Xb.shape[:2])
    K, D = 2, 2
    prec = {"full": np.stack([np.eye(D)] * K), "tied": np.eye(D), "diag": np.ones((K, D)), "spherical": np.ones(K)}[ct]
    inits = {"weights_init": np.full(K, 0.5), "means_init": np.array([[0.0, 0.0], [4.0, 4.0]]), "precisions_init": prec}
    inputs = [Xb, sw, *inits.values()]
    before = [a.copy() for a in inputs]
    gm = gpuvec.GaussianMixture(K, covariance_type=ct, warm_start=True, **inits)
    quiet_fit(gm, Xb, sample_weight=sw)
    quiet_fit(gm, Xb, sample_weight=sw)  # the warm refit
    gm.predict_proba(Xb), gm.score(Xb), gm.bic(Xb)
    for a, b in zip(inputs, before, strict=True):
        np.testing.assert_array_equal(a, b)
    gm.means_[...] = 99  # the fitted attributes are not views of the inputs
    np.testing.assert_array_equal(inits["means_init"], before[3])


def test_one_dimensional_sample_weight_and_explicit_batch_start_unchanged():
    Xb = batch(B=3)
    sw = np.ones(Xb.shape[1])
    means = np.stack([[[0.0, 0.0], [4.0, 4.0]]] * 3)
    before = means.copy(), sw.copy()
    quiet_fit(gpuvec.GaussianMixture(2, means_init=means, n_init=2, random_state=0), Xb, sample_weight=sw)
    np.testing.assert_array_equal(means, before[0])
    np.testing.assert_array_equal(sw, before[1])


# --------------------------------------------------------------------------- sklearn's own messages and semantics


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            {"weights_init": np.full((2, 1), 0.5)},
            r"The parameter 'weights' should have the shape of \(2,\), but got \(2, 1\)$",
        ),
        (
            {"weights_init": [1.2, 1.5]},
            r"should be in the range \[0, 1\], but got max value 1\.20000, min value 1\.50000",
        ),
        ({"weights_init": [0.2, 0.3]}, r"should be normalized, but got sum\(weights\) = 0\.50000$"),
        ({"means_init": "abc"}, r"means_init must be an array of real numbers; got str"),
        (
            {"precisions_init": [[1.0, 2.0], [0.0, 1.0]], "covariance_type": "tied"},
            "should be symmetric, positive-definite",
        ),
        ({"precisions_init": [1.0, -1.0], "covariance_type": "spherical"}, "'spherical precision' should be positive"),
    ],
)
def test_initial_parameter_messages_are_sklearns(kwargs, match):
    X = two_blobs(np.random.default_rng(19))
    with pytest.raises(ValueError, match=match):
        gpuvec.GaussianMixture(2, **kwargs).fit(X)


def test_batched_shape_message_offers_the_batch_shape():
    with pytest.raises(ValueError, match=r"shape of \(2, 2\), or \(3, 2, 2\) for a batch, but got \(4, 2, 2\)"):
        gpuvec.GaussianMixture(2, means_init=np.zeros((4, 2, 2))).fit(batch())


def test_sample_of_no_samples_says_so_as_sklearn():
    gm = gpuvec.GaussianMixture(2, random_state=0).fit(two_blobs(np.random.default_rng(20)))
    with pytest.raises(
        ValueError, match="Invalid value for 'n_samples': 0 . The sampling requires at least one sample"
    ):
        gm.sample(0)
    with pytest.raises(TypeError, match="n_samples must be an integer"):
        gm.sample(2.5)


def test_score_of_float32_is_the_mean_of_score_samples_as_sklearn():
    X = two_blobs(np.random.default_rng(21)).astype(np.float32)
    gm = gpuvec.GaussianMixture(2, random_state=0).fit(X)
    assert gm.score(X) == float(gm.score_samples(X).mean())


@pytest.mark.parametrize("random_state,error", [("abc", TypeError), (-1, ValueError), (1.5, TypeError)])
def test_bad_random_state_is_named_even_with_an_explicit_start(random_state, error):
    X = two_blobs(np.random.default_rng(22))
    start = {"weights_init": [0.5, 0.5], "means_init": [[0.0, 0.0], [4.0, 4.0]], "precisions_init": [np.eye(2)] * 2}
    for kwargs in ({}, start):
        with pytest.raises(error, match="random_state is not a valid seed"):
            gpuvec.GaussianMixture(2, random_state=random_state, **kwargs).fit(X)


def test_warm_start_must_be_a_bool():
    with pytest.raises(TypeError, match="warm_start must be a bool; got 'yes'"):
        gpuvec.GaussianMixture(2, warm_start="yes").fit(two_blobs(np.random.default_rng(23)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fit_predict_equals_fit_then_predict(dtype):
    Xb = batch(seed=24, B=3, n=200).astype(dtype)
    Xb[:, :, 0] *= 0.3  # overlapping blobs: many samples near a boundary
    a = quiet_fit(gpuvec.GaussianMixture(2, random_state=0, max_iter=3), Xb).predict(Xb)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = gpuvec.GaussianMixture(2, random_state=0, max_iter=3).fit_predict(Xb)
    np.testing.assert_array_equal(labels, a)


def test_ragged_x_is_named():
    with pytest.raises(ValueError, match=r"X must be a rectangular \(N, D\) or \(B, N, D\) array"):
        gpuvec.GaussianMixture(1).fit([[1.0, 2.0], [3.0]])


def test_numpy_sample_weight_with_cupy_x_is_a_type_error_but_numpy_inits_are_moved(cp):
    X = cp.asarray(two_blobs(np.random.default_rng(25)))
    with pytest.raises(TypeError, match="gpuvec.asarray"):
        gpuvec.GaussianMixture(2).fit(X, sample_weight=np.ones(120))
    gm = gpuvec.GaussianMixture(2, means_init=np.array([[0.0, 0.0], [4.0, 4.0]])).fit(X)  # small: copied
    assert type(gm.means_).__module__.startswith("cupy")


def test_fit_warnings_point_at_the_callers_line():
    X = np.random.default_rng(0).normal(size=(200, 2))
    with pytest.warns(UserWarning) as record:
        gpuvec.GaussianMixture(2, max_iter=1, tol=0.0, random_state=0).fit(X)  # stops at max_iter: warns
    assert any(w.filename == __file__ for w in record), [(w.filename, w.lineno) for w in record]


@pytest.mark.parametrize("ct", ["diag", "spherical", "full", "tied"])
def test_nearly_empty_component_covariance_is_sklearns(ct):
    """A component whose weight collapsed to a few EPS: sklearn's 'diag'/'spherical' estimate,
    avg(x^2) - mean^2 in the data's coordinates, depends on the origin through EPS; gpuvec's moments
    are taken about the data's mean and must give the same covariance (not the centred scatter / nk)."""
    gm_private = pytest.importorskip("sklearn.mixture._gaussian_mixture")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(60, 3)) * [1.0, 2.0, 0.5] + [50.0, -20.0, 8.0]  # far from the origin
    resp = np.stack([np.ones(60), np.full(60, 1e-17), rng.uniform(0.2, 0.8, 60)], axis=1)
    resp /= resp.sum(1, keepdims=True)  # component 1 holds about 6e-16 in all (a few EPS)
    nk, means, covariances = gm_private._estimate_gaussian_parameters(X, resp, 1e-6, ct)
    params = gpuvec.mixture.m_step(X[None], np.log(resp)[None], 1e-6, ct)
    np.testing.assert_allclose(params.means[0], means, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(params.covariances[0], covariances, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("ct", ["diag", "spherical"])
def test_an_empty_component_far_from_the_origin_gets_exactly_reg_covar(ct):
    """Responsibilities exactly 0 (far components underflow): sklearn's variance is reg_covar whatever the data's
    offset; written about the shift, s^2 terms must not cancel into a negative variance (and a raised reg_covar)."""
    gm_private = pytest.importorskip("sklearn.mixture._gaussian_mixture")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4)) + 1e6
    resp = rng.dirichlet(np.ones(3), size=200)
    resp[:, 1] = 0.0
    resp /= resp.sum(1, keepdims=True)
    _, _, covariances = gm_private._estimate_gaussian_parameters(X, resp, 1e-6, ct)
    with np.errstate(divide="ignore"):
        params = gpuvec.mixture.m_step(X[None], np.log(resp)[None], 1e-6, ct)
    assert np.all(covariances[1] == 1e-6)
    np.testing.assert_allclose(params.covariances[0, 1], 1e-6, rtol=1e-12)  # was -2.4e-4 (a NaN precision)
    assert np.isfinite(params.precisions_cholesky).all()
    # the other components: the weighted variances about their means (sklearn's avg(x^2) - m^2 loses
    # ~1e-3 of them to cancellation at this offset; gpuvec's moments are taken about the data's mean)
    for k in (0, 2):
        w = resp[:, k] / resp[:, k].sum()
        var = (w[:, None] * (X - w @ X) ** 2).sum(0) + 1e-6
        np.testing.assert_allclose(params.covariances[0, k], var if ct == "diag" else var.mean(), rtol=1e-9)


def test_blocked_tied_distances_keep_their_precision_far_from_the_centre():
    """Two clusters at +-1e6, D=96 ('tied' takes the blocked GEMMs there): the lower bound is sklearn's."""
    sklearn_mixture = pytest.importorskip("sklearn.mixture")
    from gpuvec.mixture import _dispatch

    rng = np.random.default_rng(2)
    N, D = 4000, 96
    X = rng.normal(size=(N, D)) + np.where(rng.random(N) < 0.5, 1e6, -1e6)[:, None]
    assert _dispatch.blocked_pays(2, D, "tied")
    kw = dict(n_components=2, covariance_type="tied", max_iter=1, tol=0.0, weights_init=[0.5, 0.5],
              means_init=np.stack([np.full(D, 1e6), np.full(D, -1e6)]) + 0.1, precisions_init=np.eye(D))  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = gpuvec.GaussianMixture(**kw).fit(X).lower_bound_
        theirs = sklearn_mixture.GaussianMixture(**kw).fit(X).lower_bound_
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)


@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("init", ["k-means++", "kmeans"])
@pytest.mark.parametrize("jit", ["0", "1"])
def test_zero_weight_rows_touch_no_statistic_whatever_they_hold(monkeypatch, ct, init, jit):
    """Padding rows of zero sample_weight holding 1e200 (their squares overflow: 0 * inf is NaN) give the fit
    of the rows without them, instead of an overflow failure."""
    monkeypatch.setenv("GPUVEC_JIT", jit)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 100, 2))
    X[:, 50:] += 5.0
    X[:, :10] = 1e200
    sw = np.ones((2, 100))
    sw[:, :10] = 0.0
    kw = dict(covariance_type=ct, init_params=init, random_state=0)
    padded = gpuvec.GaussianMixture(2, **kw).fit(X, sample_weight=sw)
    plain = gpuvec.GaussianMixture(2, **kw).fit(X[:, 10:], sample_weight=sw[:, 10:])
    np.testing.assert_allclose(padded.means_, plain.means_, atol=1e-8)
    np.testing.assert_allclose(padded.covariances_, plain.covariances_, atol=1e-8)
    np.testing.assert_allclose(padded.lower_bound_, plain.lower_bound_, rtol=1e-12)


# --------------------------------------------------------------------------- round 3 (#23): hostile cases


def _two_blobs():
    rs = np.random.default_rng(0)
    return np.r_[rs.normal(0, 1, (200, 2)), rs.normal(5, 1, (200, 2))]


@pytest.mark.parametrize("scale", [1e-20, 1e-14, 1e20])
def test_the_scale_of_sample_weight_does_not_change_the_fit(scale):
    X = _two_blobs()
    want = gpuvec.GaussianMixture(2, random_state=0).fit(X)
    got = gpuvec.GaussianMixture(2, random_state=0).fit(X, sample_weight=np.full(len(X), scale))
    np.testing.assert_allclose(got.means_, want.means_, rtol=1e-9, atol=1e-12)
    online = gpuvec.GaussianMixture(2, random_state=0).partial_fit(X, sample_weight=np.full(len(X), scale))
    np.testing.assert_allclose(
        online.means_, gpuvec.GaussianMixture(2, random_state=0).partial_fit(X).means_, rtol=1e-9
    )


def test_the_scale_of_dask_sample_weight_does_not_change_the_fit(sync):
    da = pytest.importorskip("dask.array")
    X = _two_blobs()
    want = gpuvec.GaussianMixture(2, random_state=0).fit(X)
    got = gpuvec.GaussianMixture(2, random_state=0).fit(
        da.from_array(X, chunks=100), sample_weight=da.from_array(np.full(len(X), 1e-20), chunks=100)
    )
    np.testing.assert_allclose(np.sort(got.means_, 0), np.sort(want.means_, 0), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"covariance_type": "diag"}, "covariance_type is 'diag' but the fitted"),
        ({"n_components": 3}, "n_components is 3"),
    ],
)
def test_a_changed_model_cannot_go_on(change, match):
    X = _two_blobs()
    online = gpuvec.GaussianMixture(2, random_state=0).partial_fit(X)
    online.set_params(**change)
    with pytest.raises(ValueError, match=match):
        online.partial_fit(X)
    warm = gpuvec.GaussianMixture(2, random_state=0, warm_start=True).fit(X)
    warm.set_params(**change)
    with pytest.raises(ValueError, match=match):
        warm.fit(X)
    bayes = gpuvec.BayesianGaussianMixture(2, random_state=0, warm_start=True).fit(X)
    bayes.set_params(**change)
    with pytest.raises(ValueError, match=match):
        bayes.fit(X)


@pytest.mark.parametrize("name", ["weights_init", "means_init", "precisions_init"])
def test_complex_initial_parameters_are_refused(name):
    value = {
        "weights_init": np.array([0.5, 0.5]),
        "means_init": np.zeros((2, 2)),
        "precisions_init": np.eye(2)[None] * np.ones((2, 1, 1)),
    }[name]
    with pytest.raises(TypeError, match=f"{name} must be real; got a complex array"):
        gpuvec.GaussianMixture(2, **{name: value + 1j}).fit(_two_blobs())


def test_verbose_may_be_a_bool_as_in_sklearn(capsys):
    gpuvec.GaussianMixture(2, random_state=0, verbose=True, verbose_interval=1, max_iter=2).fit(_two_blobs())
    assert "Iteration 1" in capsys.readouterr().out


def test_partial_fit_keeps_the_bound_of_a_problem_without_weight():
    X = np.random.default_rng(0).normal(size=(3, 100, 2))
    gm = gpuvec.GaussianMixture(2, random_state=0).partial_fit(X)
    before = gm.lower_bound_.copy()
    w = np.ones((3, 100))
    w[1] = 0.0
    gm.partial_fit(X + 1.0, sample_weight=w)
    assert gm.lower_bound_[1] == before[1] and gm.lower_bound_[0] != before[0]
