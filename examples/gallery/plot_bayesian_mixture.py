"""
Too many components: GaussianMixture against BayesianGaussianMixture
=====================================================================

The number of clusters is rarely known. Fitted with eight components on data that has three,
:class:`gpuvec.GaussianMixture` uses all eight (it splits clusters to raise the likelihood), while
:class:`gpuvec.BayesianGaussianMixture` puts a Dirichlet-process prior on the weights and switches
the components the data do not need off (their weights go to nearly zero).
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Ellipse

import gpuvec

rng = np.random.default_rng(2)
centers = np.array([[0.0, 0.0], [6.0, 1.0], [2.0, 6.0]])
X = np.concatenate([rng.multivariate_normal(c, [[1.5, 0.6], [0.6, 0.8]], 400) for c in centers])

models = {
    "GaussianMixture(8)": gpuvec.GaussianMixture(8, random_state=0).fit(X),
    "BayesianGaussianMixture(8)": gpuvec.BayesianGaussianMixture(8, n_init=3, random_state=0, max_iter=500).fit(X),
}

fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
for ax, (name, model) in zip(axes, models.items()):
    ax.scatter(*X.T, s=2, c="0.7")
    for w, m, c in zip(model.weights_, model.means_, model.covariances_):
        values, vectors = np.linalg.eigh(c)
        angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
        ax.add_patch(Ellipse(m, *(4 * np.sqrt(values[::-1])), angle=angle, fill=False, lw=1 + 8 * w,
                             color="C3" if w > 0.01 else "C0", alpha=max(w * 2.5, 0.15)))  # fmt: skip
    used = int((model.weights_ > 0.01).sum())
    ax.set_title(f"{name}: {used} components above 1% weight", fontsize=10)
    ax.set_aspect("equal")
    print(name, "weights:", np.round(np.sort(model.weights_)[::-1], 3))
plt.tight_layout()
plt.show()
