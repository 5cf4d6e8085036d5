"""Which implementation of ray_max runs: the one place that decides (:func:`select`).

:func:`ray_max_window` is the entry below validation, for the in-memory call
and each block of the dask path: it asks :func:`select` for an implementation
module and calls its ``streaming`` or ``dense`` function (every implementation
module has both names, with the same signatures).
"""

from __future__ import annotations

import importlib.util
import math
import sys
import threading
import types
from typing import Any

from gpuvec._core.dispatch import NUMBA_PAYS_SAMPLES, XP_BELOW_SAMPLES, compiled_setting
from gpuvec._core.namespace import get_namespace, is_cupy_namespace
from gpuvec.rays._rules import STREAMING_MODES, Window, arg_dtype, axis_positions

__all__ = ["ray_max_window", "select"]

numpy_loop_samples = 0  # samples of 2-D fixed-num calls the numpy loop took while numba was not loaded
_rent_lock = threading.Lock()


def ray_max_window(
    image: Any,
    origin: tuple[float, ...],
    num: int | None,
    order: int,
    mode: str,
    cval: float,
    return_coords: bool,
    window: Window | None = None,
) -> tuple[Any, ...]:
    """ray_max of one channel for the cells of ``window``, after validation.

    ``image`` is the whole image, or (for ``order <= 1`` with 'nearest' or
    'constant' and a fixed ``num``) any region of it that holds
    :func:`gpuvec.rays._rules.input_box` of the window, placed by
    ``window.offset``. Results have shape ``window.out_shape`` and are
    bit-identical to the same cells of the whole-image call.
    """
    xp = get_namespace(image)
    window = Window.whole(tuple(image.shape)) if window is None else window
    if num is None:
        longest = math.ceil(max(max(abs(o), abs(o - (n - 1))) for n, o in zip(window.shape, origin)))  # at a corner
        best, arg, coords = select(xp, image.ndim, None, order, mode).dense(
            image, origin, order, mode, cval, arg_dtype(longest + 1), window
        )
        return (best, arg, coords) if return_coords else (best, arg)
    whole = tuple(image.shape) == tuple(window.shape) and not any(window.offset)
    impl = select(xp, image.ndim, num, order, mode, samples=math.prod(window.out_shape) * num, whole=whole)
    best, arg = impl.streaming(image, origin, num, order, mode, cval, arg_dtype(num), window)
    if not return_coords:
        return best, arg
    out_shape = window.out_shape
    coords = xp.empty((image.ndim,) + out_shape)
    for d, (a, b, o) in enumerate(zip(window.start, window.stop, origin)):
        along = xp.arange(b - a).reshape((b - a,) + (1,) * (image.ndim - 1 - d))
        coords[d] = axis_positions(xp, range(a, b), o, num)[arg.astype(xp.intp), along]
    return best, arg, coords


def select(
    xp: types.ModuleType,
    ndim: int,
    num: int | None,
    order: int,
    mode: str,
    samples: int = 0,
    count: bool = True,
    whole: bool = True,
) -> types.ModuleType:
    """The one place that decides which implementation runs.

    ``samples``: the call's cells x ``num``. ``count``: the call is a whole call whose numpy-loop samples
    count towards numba's load (the dask path asks for each block with the whole call's samples and
    ``count=False``, so that every block gets the in-memory call's choice). ``whole``: the image given
    is the whole image (``_xp`` reads nothing else; a region of it goes to the loops).

    ====================================  ===========  ==============================  ==========================
    input                                 backend      ``GPUVEC_JIT`` unset or on      ``GPUVEC_JIT=0``
    ====================================  ===========  ==============================  ==========================
    2-D, order 0/1, nearest/constant      numpy        ``_numba`` (numba loop); small  ``_numpy``
                                                       calls ``_xp`` (see below)
    any ndim, order 0/1, nearest/constant numpy        ``_numpy`` (3-D and up)         ``_numpy``
    2-D, order 0/1, nearest/constant      cupy         ``_cuda`` (fused kernel)        ``_xp`` (cupyx)
    volumes, order 0/1, nearest/constant  cupy         ``_xp`` (cupyx)                 ``_xp``
    any other order or mode               either       ``_xp`` (map_coordinates)       ``_xp``
    dense rays (``num=None``), 2-D,       numpy        ``_numba``                      ``_xp``
    order 0/1, nearest/constant
    every other dense case                either       ``_xp``                         ``_xp``
    ====================================  ===========  ==============================  ==========================

    The numba loops run where numba is installed (a core dependency). With
    ``GPUVEC_JIT`` unset, fixed-``num`` 2-D calls take ``_numpy`` until the
    samples it has taken in this process, the current call's included, reach
    ``NUMBA_PAYS_SAMPLES`` (about numba's first-use cost), and numba from then
    on (see :func:`gpuvec._core.dispatch.compiled_setting`); calls of at most
    ``XP_BELOW_SAMPLES`` samples take ``_xp`` whether numba is loaded or not
    (map_coordinates in one call beats either loop's fixed cost there) and count
    nothing towards numba's load; until it is loaded, calls up to ``_xp``'s
    ``ONE_CALL_POINTS`` take ``_xp`` too (one map_coordinates call beats the numpy
    loop, whose cost grows with ``num``), paying their samples towards it. Every row is bit-identical to
    scipy except cupyx's map_coordinates (``_xp`` on cupy), whose arithmetic
    can differ from scipy's in the last bit.
    """
    global numpy_loop_samples
    streaming_case = order <= 1 and mode in STREAMING_MODES
    setting = compiled_setting()
    # Dense rays always pay (their alternative is map_coordinates).
    pays = num is None or "gpuvec.rays._numba" in sys.modules or numpy_loop_samples + samples >= NUMBA_PAYS_SAMPLES
    numba_pays = setting == "on" or (setting == "auto" and pays)
    # Lazy imports: numba and cupy load only when their implementation is chosen.
    impl: types.ModuleType
    small = not is_cupy_namespace(xp) and ndim == 2 and num is not None and setting == "auto" and whole
    if small and streaming_case and samples <= XP_BELOW_SAMPLES:
        # map_coordinates in one call: cheaper than either loop's fixed cost, numba loaded or not (8 x 8,
        # num=5: 0.07 ms against the numba loop's 0.12), and bit-identical to both
        from gpuvec.rays import _xp

        impl = _xp
    elif is_cupy_namespace(xp) and streaming_case and ndim == 2 and num is not None and setting != "off":
        from gpuvec.rays import _cuda

        impl = _cuda
    elif not is_cupy_namespace(xp) and streaming_case and ndim == 2 and numba_pays and numba_installed():
        from gpuvec.rays import _numba

        impl = _numba
    elif not is_cupy_namespace(xp) and streaming_case and num is not None:
        from gpuvec.rays import _numpy, _xp

        # until numba is loaded, calls that map_coordinates takes in one go go there (16 x 16, num=50:
        # 0.29 ms against the numpy loop's 1.26, whose cost grows with num); both pay rent towards numba
        impl = _xp if small and samples <= _xp.ONE_CALL_POINTS else _numpy
        if ndim == 2 and setting == "auto" and count:  # the rent paid towards numba's load
            with _rent_lock:
                numpy_loop_samples += samples
    else:
        from gpuvec.rays import _xp

        impl = _xp
    return impl


def numba_installed() -> bool:
    return importlib.util.find_spec("numba") is not None
