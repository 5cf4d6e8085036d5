"""What the CUDA kernels' sources share (no cupy here): C types of numpy dtypes, and launch shapes.

Each algorithm's ``_cuda`` module holds its kernel as one CUDA C++ source string
(``SOURCE``), the NVRTC options it is compiled with (``OPTIONS``) and the
template instances it can launch (``name_expressions()``), compiled by cupy's
``RawModule`` on a device and by NVRTC alone in tests/core/test_cuda_sources.py,
which needs no GPU.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["BLOCK", "c_type", "grid_for"]

BLOCK = 256  # threads per block: every kernel is a grid-stride loop over its items
_MAX_BLOCKS = 1 << 20

_C_TYPES = {
    "float32": "float",
    "float64": "double",
    "int8": "signed char",
    "int16": "short",
    "int32": "int",
    "int64": "long long",
    "uint8": "unsigned char",
    "uint16": "unsigned short",
    "uint32": "unsigned int",
    "uint64": "unsigned long long",
    "bool": "bool",
}


def c_type(dtype: Any) -> str:
    """The CUDA C++ type of a numpy dtype (``float64`` -> ``double``).

    Examples
    --------
    >>> c_type(np.uint16)
    'unsigned short'
    """
    return _C_TYPES[np.dtype(dtype).name]


def grid_for(items: int) -> int:
    """Blocks of :data:`BLOCK` threads for ``items`` (grid-stride loops take the rest past ``2**20`` blocks).

    Examples
    --------
    >>> grid_for(1), grid_for(257), grid_for(10**12)
    (1, 2, 1048576)
    """
    return max(1, min(-(-items // BLOCK), _MAX_BLOCKS))
