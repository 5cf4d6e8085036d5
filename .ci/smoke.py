"""One call of each algorithm from an installed wheel (run outside the checkout), and the version in one place."""

from importlib.metadata import version

import numpy as np

import gpuvec

assert gpuvec.__file__ and "site-packages" in gpuvec.__file__, f"not the installed wheel: {gpuvec.__file__}"
assert gpuvec.__version__ == version("gpuvec"), (gpuvec.__version__, version("gpuvec"))
best, where = gpuvec.ray_max(np.arange(64.0).reshape(8, 8), (3, 3), num=5)
assert best.shape == (8, 8) and best[7, 7] == 63.0
assert gpuvec.is_rotation(np.eye(3)[None]).all()
assert np.allclose(gpuvec.nearest_rotation(np.eye(3) * 2), np.eye(3))
x = gpuvec.random.default_rng(0, backend="numpy").multivariate_normal(np.zeros(2), np.eye(2), size=500)
X = np.concatenate([x, x + 10])
gm = gpuvec.GaussianMixture(2, random_state=0).fit(X)
assert sorted(np.round(gm.means_.mean(axis=1))) == [0.0, 10.0]
print(f"gpuvec {gpuvec.__version__} from {gpuvec.__file__}: ray_max, rotations, sampling and a mixture fit ran")
