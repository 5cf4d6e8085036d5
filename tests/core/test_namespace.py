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
