"""BayesianGaussianMixture against sklearn's: the same updates and lower bound from the same start, batches,
the priors, refusals, sklearn's estimator checks."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gpuvec
from gpuvec.mixture import _fit
from gpuvec.mixture._xp import label_statistics

sk_mixture = pytest.importorskip("sklearn.mixture")

COV_TYPES = ["full", "tied", "diag", "spherical"]
PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]


def blobs(D, seed=0, n=200, K=3, spread=8.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, spread, (K, D))
    return np.concatenate([rng.normal(c, 1.0, (n, D)) for c in centers])


def fixed_start_fits(X, labels, K, **params):
    """sklearn's and gpuvec's fits from the same starting responsibilities (one-hot ``labels``)."""

    class FixedStart(sk_mixture.BayesianGaussianMixture):
        def _initialize_parameters(self, X, random_state, xp=None):
            resp = np.zeros((len(X), K))
            resp[np.arange(len(X)), labels] = 1.0
            self._initialize(X, resp)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = FixedStart(n_components=K, **params).fit(X)
        original = _fit.start_statistics
        _fit.start_statistics = lambda settings, xp, X3, sw, n_init: label_statistics(
            X3, xp.asarray(labels)[None], K, settings.covariance_type, sw
        )
        try:
            ours = gpuvec.BayesianGaussianMixture(K, **params).fit(X)
        finally:
            _fit.start_statistics = original
    return ours, theirs


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("D", [2, 5])
def test_same_start_same_fit_as_sklearn(D, ct, prior_type):
    X = blobs(D)
    labels = np.random.default_rng(1).integers(0, 5, len(X))  # a poor start: EM has work to do
    params = dict(covariance_type=ct, weight_concentration_prior_type=prior_type, max_iter=40, tol=1e-6)
    ours, theirs = fixed_start_fits(X, labels, 5, **params)
    assert ours.n_iter_ == theirs.n_iter_ and ours.converged_ == theirs.converged_
    assert ours.lower_bound_ == pytest.approx(float(np.ravel(theirs.lower_bound_)[0]), rel=1e-9)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "mean_precision_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-7, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(ours.degrees_of_freedom_, theirs.degrees_of_freedom_, rtol=1e-9)
    conc_ours, conc_theirs = ours.weight_concentration_, theirs.weight_concentration_
    for a, b in zip(np.atleast_2d(conc_ours), np.atleast_2d(conc_theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-7)
    np.testing.assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-8)


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_unneeded_components_are_switched_off(ct):
    X = blobs(2, seed=3)
    bgm = gpuvec.BayesianGaussianMixture(8, covariance_type=ct, n_init=3, random_state=0, max_iter=300).fit(X)
    assert (bgm.weights_ > 0.01).sum() == 3
    np.testing.assert_allclose(np.sort(bgm.weights_)[-3:], [1 / 3] * 3, atol=0.02)


def test_priors_given_and_the_priors_used():
    X = blobs(3)
    bgm = gpuvec.BayesianGaussianMixture(
        3,
        weight_concentration_prior=0.5,
        mean_precision_prior=2.0,
        mean_prior=np.zeros(3),
        degrees_of_freedom_prior=4.0,
        covariance_prior=np.eye(3) * 2,
        random_state=0,
    ).fit(X)
    assert bgm.weight_concentration_prior_ == 0.5 and bgm.degrees_of_freedom_prior_ == 4.0
    np.testing.assert_array_equal(bgm.covariance_prior_, np.eye(3) * 2)
    default = gpuvec.BayesianGaussianMixture(3, random_state=0).fit(X)
    np.testing.assert_allclose(default.mean_prior_, X.mean(0))
    np.testing.assert_allclose(default.covariance_prior_, np.cov(X.T))
    assert default.weight_concentration_prior_ == pytest.approx(1 / 3) and default.degrees_of_freedom_prior_ == 3


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"degrees_of_freedom_prior": 1.0}, ValueError, "degrees_of_freedom_prior' should be greater than 2"),
        ({"weight_concentration_prior": -1.0}, ValueError, "weight_concentration_prior must be finite and greater"),
        ({"mean_prior": np.zeros(2)}, ValueError, r"mean_prior must have shape \(3,\)"),
        ({"covariance_prior": -np.eye(3)}, ValueError, "full covariance_prior' should be symmetric, positive-definite"),
        ({"weight_concentration_prior_type": "beta"}, ValueError, "weight_concentration_prior_type must be one of"),
        ({"covariance_type": "banana"}, ValueError, "covariance_type must be one of"),
        ({"mean_precision_prior": "big"}, TypeError, "mean_precision_prior must be a real number"),
    ],
)
def test_bad_priors_are_named(params, error, match):
    with pytest.raises(error, match=match):
        gpuvec.BayesianGaussianMixture(2, **params).fit(blobs(3))


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_batched_problems_equal_one_at_a_time(ct):
    X = np.stack([blobs(2, seed=s, n=100) for s in range(6)])
    batch = gpuvec.BayesianGaussianMixture(4, covariance_type=ct, random_state=0).fit(X)
    for b in range(6):
        one = gpuvec.BayesianGaussianMixture(4, covariance_type=ct, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the batched start draws over all problems at once: give problem b its own start's labels
            original = _fit.start_statistics
            first = original(_fit_settings(one), np, X, None, 1)
            _fit.start_statistics = lambda settings, xp, X3, sw, n_init, b=b, first=first: type(first)(
                *(a[b : b + 1] for a in first)
            )
            try:
                one.fit(X[b])
            finally:
                _fit.start_statistics = original
        np.testing.assert_allclose(one.means_, batch.means_[b], rtol=1e-9, atol=1e-10)
        assert one.lower_bound_ == pytest.approx(batch.lower_bound_[b], rel=1e-10)
    assert batch.predict(X).shape == (6, 300) and batch.sample(5)[0].shape == (6, 5, 2)


def _fit_settings(est):
    from gpuvec.mixture._bayesian_fit import settings_of

    return settings_of(est)


def test_float32_kept_and_warm_start_goes_on():
    X = blobs(2).astype(np.float32)
    bgm = gpuvec.BayesianGaussianMixture(3, random_state=0, max_iter=2, warm_start=True)
    with pytest.warns(gpuvec.mixture.ConvergenceWarning):
        bgm.fit(X)
    assert bgm.means_.dtype == np.float32
    first = bgm.lower_bound_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bgm.fit(X)
    assert bgm.lower_bound_ >= first - 1e-6


def test_sklearn_check_estimator_passes():
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(gpuvec.BayesianGaussianMixture(), on_fail=None)
    failed = [r for r in results if r["status"] == "failed"]
    assert not failed, [(r["check_name"], str(r["exception"])[:200]) for r in failed]


def test_sklearns_own_bayesian_mixture_tests_pass(tmp_path):
    """sklearn's test_bayesian_mixture.py (the installed version's) against gpuvec's class: every test passes
    but test_compare_covar_type, which calls sklearn's private ``_check_parameters`` and
    ``_initialize_parameters``."""
    import pathlib
    import subprocess
    import sys

    import sklearn

    source = pathlib.Path(sklearn.__file__).parent / "mixture" / "tests" / "test_bayesian_mixture.py"
    if not source.exists():
        pytest.skip("this scikit-learn install has no tests")
    text = source.read_text().replace(
        "from sklearn.mixture import BayesianGaussianMixture\n", "from gpuvec import BayesianGaussianMixture\n"
    )
    assert "from gpuvec import BayesianGaussianMixture" in text
    (tmp_path / "test_theirs.py").write_text(text)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "test_theirs.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    failed = sorted(line.split("::")[1].split(" ")[0] for line in run.stdout.splitlines() if line.startswith("FAILED"))
    assert failed == ["test_compare_covar_type"], run.stdout[-3000:]
    assert " passed" in run.stdout
