"""
The seed's mixture, before and after the fix
============================================

The question gpuvec's mixtures grew from: two 2-D clusters of 1000 points each, around (0, 0) and
(5, 5), fitted by a hand-written EM that started **both** components at mean (10, 10) with
covariance 10 I. After ten iterations both means were (2.508, 2.515) and both covariances
about [[7.05, 6.17], [6.17, 7.23]]: one component's worth of answer, twice.

The code was not wrong: two identical components are a fixed point of EM. Every step gives
both the same responsibilities (one half each), so they stay identical forever. gpuvec,
started the same way, reproduces those numbers to the last digit, and warns that the start is
a fixed point. The fix is a start that tells the components apart: gpuvec's default
(k-means++ seeding) or any two distinct ``means_init``.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Ellipse

import gpuvec
from gpuvec.tools.baselines import seed_em_data

X = seed_em_data().T  # the seed's (2, 2000) array, as (N, D) = (2000, 2)

# The seed's start: both means at (10, 10), both covariances 10 I, equal weights.
seed_start = {
    "weights_init": [0.5, 0.5],
    "means_init": [[10.0, 10.0], [10.0, 10.0]],
    "precisions_init": np.array([np.eye(2) / 10, np.eye(2) / 10]),
}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    stuck = gpuvec.GaussianMixture(2, max_iter=10, tol=0, **seed_start).fit(X)
print("gpuvec warned:", str(caught[0].message).split(". ")[0] + ".")
print("means from the seed's start:\n", stuck.means_.round(8))

fixed = gpuvec.GaussianMixture(2, random_state=0).fit(X)  # k-means++ start
print("means from a k-means++ start:\n", fixed.means_.round(3))


def draw(ax, means, covariances, colors, title):
    ax.scatter(X[:, 0], X[:, 1], s=2, color="0.6")
    for mean, cov, color in zip(means, covariances, colors):
        values, vectors = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1]))
        for n_std in (1, 2):  # 1 and 2 standard deviations
            w, h = 2 * n_std * np.sqrt(values[::-1])
            ax.add_patch(
                Ellipse(mean, w, h, angle=angle, fill=False, color=color, lw=2, ls="-" if n_std == 1 else "--")
            )
        ax.plot(*mean, "x", color=color, markersize=10, mew=3)
    ax.set_title(title, fontsize=10)
    ax.set_xlim(-4, 15)
    ax.set_ylim(-4, 15)
    ax.set_aspect("equal")


fig, axes = plt.subplots(1, 3, figsize=(13, 4.5), layout="constrained")
draw(
    axes[0], seed_start["means_init"], [10 * np.eye(2)] * 2, ["C3", "C0"], "the seed's start: two identical components"
)
draw(axes[1], stuck.means_, stuck.covariances_, ["C3", "C0"], "after EM from it: still identical\n(the seed's answer)")
draw(axes[2], fixed.means_, fixed.covariances_, ["C3", "C0"], "after EM from a k-means++ start (the fix)")
plt.show()
