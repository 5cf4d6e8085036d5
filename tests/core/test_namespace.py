"""gpuvec._core.namespace: the namespace of the inputs, numpy and cupy never mixed, asarray and to_numpy."""

from __future__ import annotations

import numpy as np
import pytest

import gpuvec
from gpuvec._core import namespace


def test_get_namespace_follows_inputs(xp):
    a = xp.zeros(3)
    assert gpuvec.get_namespace(a) is xp
    assert gpuvec.get_namespace(a, 1.0, None, [1]) is xp


def test_mixing_numpy_and_cupy_is_a_type_error(cp):
    with pytest.raises(TypeError, match=r"numpy\.ndarray.*cupy.*gpuvec\.asarray\(x, like=other\)"):
        gpuvec.get_namespace(np.zeros(2), cp.zeros(2))


def test_cupy_like_object_is_recognised_without_importing_cupy():
    fake_type = type("ndarray", (), {"__module__": "cupy._core.core"})
    assert namespace.is_cupy_array(fake_type())
    assert not namespace.is_cupy_array(np.zeros(1))


def test_asarray_to_numpy_roundtrip(xp):
    x = gpuvec.asarray([1.0, 2.0], like=xp.zeros(1))
    assert type(x).__module__.split(".")[0] == xp.__name__
    back = gpuvec.to_numpy(x)
    assert isinstance(back, np.ndarray) and back.tolist() == [1.0, 2.0]
    assert gpuvec.asarray([1, 2], dtype=np.float32, like=xp.zeros(1)).dtype == np.float32
    gpuvec.sync()


def test_is_foreign_looks_at_the_object_and_remembers_only_the_type():
    """Whether a type is numpy/cupy/dask/plain is remembered; the DLPack methods are looked up on the object
    (a proxy may carry them as instance attributes), and classes themselves never count."""
    import types as _types

    from gpuvec._core import namespace

    a = np.arange(3.0)
    proxy = _types.SimpleNamespace(__dlpack__=a.__dlpack__, __dlpack_device__=a.__dlpack_device__)
    assert namespace.is_foreign(proxy)  # (numpy >= 1.25's from_dlpack takes it too; 1.24 looks on the type)
    assert not namespace.is_foreign(_types.SimpleNamespace())  # same type, no methods

    class Tensor:
        def __dlpack__(self, **kwargs):
            return a.__dlpack__(**kwargs)

        def __dlpack_device__(self):
            return a.__dlpack_device__()

    assert namespace.is_foreign(Tensor()) and not namespace.is_foreign(Tensor)
    assert not namespace.is_foreign(a) and not namespace.is_foreign(np.float64(1.0)) and not namespace.is_foreign(3)
    for _ in range(2000):  # classes made on the fly do not grow the memo without end
        namespace.is_foreign(type("Made", (), {})())
    assert len(namespace._OURS) <= 1025
