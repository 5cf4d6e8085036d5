"""
A thousand mixtures in one call
===============================

:class:`gpuvec.GaussianMixture` fits a batch: ``X`` of shape (B, N, D) is B independent
problems, fitted together (one GEMM-shaped E-step and M-step for the whole batch per iteration;
problems that have converged leave the active set). Here B = 1000 two-component problems in 2-D,
each with its own separation between the clusters and its own number of samples.

Problems of different sizes share one array through **zero-weight padding**: every problem is
padded to the largest N, and ``sample_weight`` is 0 on the padding rows, which then count for
nothing (the fit of a padded problem is the fit of its real rows).
"""

import time

import matplotlib.pyplot as plt
import numpy as np

import gpuvec

rng = np.random.default_rng(0)
B, N_max, D, K = 1000, 400, 2, 2

separation = rng.uniform(0.5, 6.0, B)  # distance between the two true means
n_real = rng.integers(100, N_max + 1, B)  # samples per problem, 100 to 400
true_means = np.zeros((B, K, D))
true_means[:, 1, 0] = separation
labels = rng.integers(0, K, (B, N_max))
X = true_means[np.arange(B)[:, None], labels] + rng.normal(size=(B, N_max, D))
sample_weight = (np.arange(N_max) < n_real[:, None]).astype(float)  # 0 on the padding rows
X[sample_weight == 0] = 0.0  # what the padding holds does not matter

start = time.perf_counter()
gm = gpuvec.GaussianMixture(K, random_state=0, max_iter=200).fit(X, sample_weight=sample_weight)
elapsed = time.perf_counter() - start
print(f"{B} problems fitted in {elapsed:.2f} s; converged: {int(gm.converged_.sum())} of {B}")

# Match each fitted component to the true one nearest to it (sort by x), then measure the error.
order = np.argsort(gm.means_[:, :, 0], axis=1)
fitted = np.take_along_axis(gm.means_, order[:, :, None], axis=1)
error = np.linalg.norm(fitted - true_means, axis=-1).max(axis=1)

# %%
# One figure for the thousand fits: the error of the worse mean against how far apart the
# clusters are (well separated clusters are found to within the sampling noise, about
# 1/sqrt(N/2)); how many iterations each problem took; and one problem with its ellipses.

fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), layout="constrained")
points = axes[0].scatter(separation, error, c=n_real, s=6, cmap="viridis")
axes[0].set_yscale("log")
axes[0].set_xlabel("distance between the true means")
axes[0].set_ylabel("error of the worse fitted mean")
axes[0].set_title("1000 problems, one batched fit", fontsize=10)
fig.colorbar(points, ax=axes[0], label="real samples (the rest is zero-weight padding)")

axes[1].hist(gm.n_iter_, bins=np.arange(0, gm.n_iter_.max() + 2) - 0.5, color="C0")
axes[1].set_xlabel("EM iterations until converged (tol=1e-3)")
axes[1].set_ylabel("problems")
axes[1].set_title("each problem stops on its own", fontsize=10)

b = int(np.argmin(np.abs(separation - 4.0)))  # a problem with fairly well separated clusters
real = sample_weight[b] > 0
axes[2].scatter(*X[b, real].T, s=4, c=gm.predict(X)[b, real], cmap="coolwarm")
for mean, cov in zip(gm.means_[b], gm.covariances_[b]):
    values, vectors = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, 100)
    ring = mean[:, None] + 2 * (vectors * np.sqrt(values)) @ np.array([np.cos(t), np.sin(t)])
    axes[2].plot(*ring, "k", lw=1.5)
axes[2].set_aspect("equal")
axes[2].set_title(f"problem {b}: {n_real[b]} samples, 2-sigma ellipses", fontsize=10)
plt.show()
