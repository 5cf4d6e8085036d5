"""
How much faster, measured
=========================

The speed-ups of ``benchmarks/RESULTS.md`` (2026-11-26), drawn, not re-measured: building the
documentation does not time anything. Each ratio compares two methods **in the same run on the
same machine** (the seed's own code, or scikit-learn, against gpuvec). CPU ratios come from a
2-core AMD EPYC sandbox (rays and mixtures from the third run of RESULTS.md, the rest from the
second); GPU ratios from one NVIDIA H200 before that work, against the same code ported to
cupyx (rays) or against scikit-learn on that machine's 16 host cores (mixtures), not re-measured.

See :doc:`/user_guide/benchmarks` for how to read them and how to rerun them.
"""

import matplotlib.pyplot as plt
import numpy as np

# (case, reference method, speed-up), as the tables of benchmarks/RESULTS.md state them (the
# ratios of the medians measured there; the raw JSON is in benchmarks/results/).
cpu = [
    ("ray_max 3000x3000, num=5", "the accepted answer", 25.4),
    ("ray_max 1000x1000, num=50", "the accepted answer", 21.2),
    ("is_rotation 10M 3x3", "batched matmul + det", 14.0),
    ("is_rotation 1M 8x8", "batched matmul + det", 1.5),
    ("random.normal (1000, 1000, 3)", "numpy's Generator.normal", 1.50),
    ("GaussianMixture N=1e6 D=8 K=16", "sklearn", 20.9),
    ("GaussianMixture 1000 problems", "a loop of sklearn fits", 31.3),
]
gpu = [
    ("ray_max 3000x3000, num=5", "the accepted answer on cupyx", 1087),
    ("ray_max 1000x1000, num=50", "the accepted answer on cupyx", 1189),
    ("GaussianMixture N=1e6 D=8 K=16", "sklearn (host CPU)", 163),
    ("GaussianMixture 1000 problems", "sklearn loop (host CPU)", 68),
]

fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), layout="constrained", gridspec_kw={"width_ratios": [7, 4]})
for ax, rows, title, color in (
    (axes[0], cpu, "CPU (2 cores), numpy backend", "C0"),
    (axes[1], gpu, "GPU (H200), cupy backend", "C2"),
):
    ratios = np.array([ratio for _, _, ratio in rows])
    y = np.arange(len(rows))[::-1]
    ax.barh(y, ratios, color=color)
    ax.set_yticks(y, [f"{case}\nvs {ref}" for case, ref, _ in rows], fontsize=8)
    ax.set_xscale("log")
    ax.axvline(1, color="k", lw=0.8)
    for yi, r in zip(y, ratios):
        ax.text(r * 1.08, yi, f"{r:g}x", va="center", fontsize=8)
    ax.set_xlim(0.8, ratios.max() * 4)
    ax.set_xlabel("speed-up: reference time / gpuvec time (log scale)")
    ax.set_title(title, fontsize=10)
plt.show()

# %%
# Memory moves as much as time on the CPU: the accepted ray answer needs +1387 MB for a 3000x3000
# image at ``num=5`` where gpuvec's streaming loop needs +88 MB even at ``num=50``, and the
# batched numpy rotation check needs +2073 MB for 10M matrices where gpuvec needs +10 MB.
