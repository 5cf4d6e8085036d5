"""Draw ray_max on the seed's second answer's test pattern: input, max along the rays, where the max is.

Run: python examples/ray_picture.py [out.png]   (needs matplotlib: pip install "gpuvec[plot]")
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import gpuvec

# The second answer's monochrome test pattern: a lattice of bright dots of four intensities.
s = np.uint8((np.arange(384)[:, None] % 41 < 2) & (np.arange(512) % 41 < 2))
image = 255 * s + 128 * s[::-1, ::-1] + 64 * s[::-1] + 32 * s[:, ::-1]
origin = (200, 400)

best, arg, coords = gpuvec.ray_max(image, origin, None, order=0, return_coords=True)
best, coords = gpuvec.to_numpy(best), gpuvec.to_numpy(coords)
distance = np.hypot(coords[0] - origin[0], coords[1] - origin[1])

fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
for ax, data, title, cmap in (
    (axes[0], image, "input (origin marked)", "gray"),
    (axes[1], best, "max along the ray to the origin (num=None, order=0)", "gray"),
    (axes[2], distance, "distance from the origin to that max", "viridis"),
):
    shown = ax.imshow(data, cmap=cmap)
    ax.plot(origin[1], origin[0], "r+", markersize=12)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
fig.colorbar(shown, ax=axes[2], fraction=0.046)
fig.tight_layout()
fig.savefig(sys.argv[1] if len(sys.argv) > 1 else "docs/ray_max.png", dpi=80)
