"""gpuvec: batched array algorithms that run on NVIDIA GPUs through CuPy and on the CPU through NumPy.

Every algorithm is written once against an array namespace; the inputs decide
where it runs (numpy in, numpy out; cupy in, cupy out). ``gpuvec.xp`` and
``gpuvec.ndimage`` are the default namespaces; see :func:`backend_info`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpuvec import random
from gpuvec._core.backend import BackendInfo, BackendUnavailableError, backend_info, sync, use_backend
from gpuvec._core.namespace import asarray, get_namespace, to_numpy
from gpuvec._version import __version__ as __version__
from gpuvec.mixture import BayesianGaussianMixture, GaussianMixture
from gpuvec.rays import ray_max
from gpuvec.rotations import is_rotation, nearest_rotation, rotation_residuals

if TYPE_CHECKING:
    from types import ModuleType

__all__ = [
    "BackendInfo",
    "BackendUnavailableError",
    "BayesianGaussianMixture",
    "GaussianMixture",
    "asarray",
    "backend_info",
    "get_namespace",
    "is_rotation",
    "ndimage",
    "nearest_rotation",
    "random",
    "ray_max",
    "rotation_residuals",
    "sync",
    "to_numpy",
    "use_backend",
    "xp",
]


def __getattr__(name: str) -> ModuleType:
    # ``gpuvec.xp`` and ``gpuvec.ndimage`` follow the current default, which
    # ``use_backend`` can change, so they are looked up on access.
    from gpuvec._core import backend

    if name == "xp":
        return backend.default_xp()
    if name == "ndimage":
        return backend.default_ndimage()
    raise AttributeError(f"module 'gpuvec' has no attribute {name!r}")
