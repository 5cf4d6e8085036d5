"""
The max along every ray to an origin
====================================

:func:`gpuvec.ray_max` on the test pattern of the seed question's second answer: a lattice of
bright dots of four intensities. Every pixel on each ray is sampled (``num=None``, dense rays) at
the nearest pixel (``order=0``), and ``return_coords=True`` says where on the ray the max is.

Each bright dot casts a "shadow" away from the origin: every cell whose ray to the origin passes
through the dot sees its value. The right panel shows how far from the origin that max lies.
(The README's picture, ``docs/ray_max.png``, is this script's first figure, saved by
``examples/ray_picture.py``.)
"""

import matplotlib.pyplot as plt
import numpy as np
from scipy.ndimage import map_coordinates

import gpuvec

# The second answer's monochrome test pattern: dots of 255, 128, 64 and 32 on a 41-pixel lattice.
s = np.uint8((np.arange(384)[:, None] % 41 < 2) & (np.arange(512) % 41 < 2))
image = 255 * s + 128 * s[::-1, ::-1] + 64 * s[::-1] + 32 * s[:, ::-1]
origin = (200, 400)

best, argmax, coords = gpuvec.ray_max(image, origin, None, order=0, return_coords=True)
distance = np.hypot(coords[0] - origin[0], coords[1] - origin[1])

fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
for ax, data, title, cmap in (
    (axes[0], image, "input (origin marked)", "gray"),
    (axes[1], best, "max along the ray to the origin", "gray"),
    (axes[2], distance, "distance from the origin to that max", "viridis"),
):
    shown = ax.imshow(data, cmap=cmap)
    ax.plot(origin[1], origin[0], "r+", markersize=12)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
fig.colorbar(shown, ax=axes[2], fraction=0.046)
plt.show()

# %%
# A fixed number of samples per ray
# ---------------------------------
# The seed's own question: ``num=5`` samples per ray, linear interpolation. Memory stays
# O(rows x cols) whatever ``num`` is, and the result is bit-identical to
# ``scipy.ndimage.map_coordinates`` followed by max/argmax (the accepted answer).

best5, arg5 = gpuvec.ray_max(image.astype(np.float64), origin, num=5)

rows, cols = image.shape
lin_r = np.array([np.linspace(i, origin[0], 5) for i in range(rows)])
lin_c = np.array([np.linspace(j, origin[1], 5) for j in range(cols)])
coords5 = np.vstack((np.tile(lin_r, cols).ravel(), np.tile(lin_c.ravel(), rows)))
reference = map_coordinates(image.astype(np.float64), coords5, order=1, mode="nearest").reshape(rows, cols, 5)
print("bit-identical to the accepted answer:", np.array_equal(best5, reference.max(-1)))

fig, ax = plt.subplots(figsize=(5, 3.8), layout="constrained")
ax.imshow(best5, cmap="gray")
ax.plot(origin[1], origin[0], "r+", markersize=12)
ax.set_title("num=5, order=1: five samples per ray", fontsize=10)
ax.axis("off")
plt.show()
