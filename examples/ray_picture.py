"""The README's picture (docs/ray_max.png): the first figure of the gallery example
examples/gallery/plot_ray_picture.py (ray_max on the seed's second answer's test pattern), saved.

Run: python examples/ray_picture.py [out.png]   (needs matplotlib: pip install "gpuvec[plot]")
"""

from __future__ import annotations

import pathlib
import runpy
import sys

import matplotlib

matplotlib.use("Agg")  # plt.show() in the gallery script does nothing; the figures stay open
import matplotlib.pyplot as plt

runpy.run_path(str(pathlib.Path(__file__).parent / "gallery" / "plot_ray_picture.py"), run_name="__main__")
plt.figure(1).savefig(sys.argv[1] if len(sys.argv) > 1 else "docs/ray_max.png", dpi=80)
