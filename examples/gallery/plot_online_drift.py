"""
Online mixtures on a drifting stream
====================================

:meth:`gpuvec.GaussianMixture.partial_fit` fits a stream one minibatch at a time by stepwise EM.
Here three clusters drift across the plane for the first 30 of 60 minibatches, then stay where
they arrived. The online model follows them and settles on where they are; a batch fit of
everything seen (what ``fit`` gives on the whole stream) averages their paths into components
stretched over the whole path (the dashed 2-sigma ellipses).

``learning_decay`` sets how fast old batches are forgotten: near 0.5 the model follows drift
closely, 1 weighs every batch alike.
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Ellipse

import gpuvec

rng = np.random.default_rng(0)
start = np.array([[0.0, 0.0], [7.0, 0.0], [3.5, 6.0]])
velocity = np.array([[0.2, 0.1], [0.1, 0.2], [-0.1, 0.1]])  # per minibatch, while they move
n_batches, moving, n = 60, 30, 1000


def centres(t):
    return start + min(t, moving - 1) * velocity


def minibatch(t):
    labels = rng.integers(0, 3, n)
    return centres(t)[labels] + rng.normal(0, 0.6, (n, 2))


online = gpuvec.GaussianMixture(3, random_state=0, learning_decay=0.55)
seen, tracks = [], []
for t in range(n_batches):
    batch = minibatch(t)
    seen.append(batch)
    online.partial_fit(batch)
    tracks.append(online.means_.copy())
tracks = np.array(tracks)  # (steps, K, 2)
batch_fit = gpuvec.GaussianMixture(3, random_state=0).fit(np.concatenate(seen))

truth_now = centres(n_batches - 1)
print("true centres now:\n", truth_now.round(2))
print("online means:\n", online.means_[np.argsort(online.means_[:, 0])].round(2))
print("batch-fit means:\n", batch_fit.means_[np.argsort(batch_fit.means_[:, 0])].round(2))

fig, ax = plt.subplots(figsize=(7, 5))
recent = np.concatenate(seen[-5:])
ax.scatter(*recent.T, s=2, c="0.75", label="the last 5 minibatches")
for k in range(3):
    ax.plot(*tracks[:, k].T, "-", lw=2, label="online mean, batch by batch" if k == 0 else None, color="C0")
    path = np.array([centres(t)[k] for t in range(n_batches)])
    ax.plot(*path.T, ":", color="k", label="true centre's path" if k == 0 else None)
ax.scatter(*online.means_.T, marker="o", s=80, color="C0", zorder=3, label="online, after the stream")
ax.scatter(*batch_fit.means_.T, marker="x", s=100, color="C3", zorder=3, label="batch fit of the whole stream")


def two_sigma(mean, cov, color, style):
    """The 2-sigma ellipse of a component."""
    values, vectors = np.linalg.eigh(cov)
    angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
    w, h = 4 * np.sqrt(values[::-1])
    ax.add_patch(Ellipse(mean, w, h, angle=angle, fill=False, color=color, ls=style, lw=1.5))


for k in range(3):
    two_sigma(online.means_[k], online.covariances_[k], "C0", "-")
    two_sigma(batch_fit.means_[k], batch_fit.covariances_[k], "C3", "--")
ax.set_aspect("equal")
ax.legend(loc="lower right", fontsize=8)
ax.set_title("partial_fit follows the clusters; fit stretches over their paths")
plt.show()
