"""Every CUDA kernel gpuvec can send to a GPU, compiled by NVRTC on this machine, GPU or not.

Each ``_cuda`` module's ``SOURCE`` is compiled with its ``OPTIONS`` and every template instance it can
launch (``name_expressions()``), for sm_80 (A100) and sm_90 (H100/H200): the CUBIN (NVRTC and ptxas) and
the PTX. The ray kernel promises bit-identity with scipy's arithmetic, so its PTX must hold no fused
multiply-add. NVRTC comes from the ``nvidia-cuda-nvrtc-cu12`` wheel; where it is missing the tests skip,
unless ``GPUVEC_REQUIRE_NVRTC=1`` (CI sets it) makes that a failure.
"""

from __future__ import annotations

import importlib
import os
import re

import pytest

from tests import nvrtc

ARCHS = [80, 90]
# CuPy appends -ftz=true to every kernel's options (cupy.cuda.compiler), after the caller's: compiled here too,
# so that what is checked is what a GPU runs.
CUPY_APPENDS = ["-ftz=true"]
KERNEL_MODULES = ["gpuvec.rays._cuda", "gpuvec.rotations._cuda"]
BIT_IDENTICAL = {"gpuvec.rays._cuda"}  # kernels whose arithmetic must round as the CPU paths do


@pytest.fixture(scope="module")
def compiler():
    if nvrtc.load() is None:
        if os.environ.get("GPUVEC_REQUIRE_NVRTC", "") == "1":
            pytest.fail("GPUVEC_REQUIRE_NVRTC=1 but NVRTC is not installed (pip install nvidia-cuda-nvrtc-cu12)")
        pytest.skip("NVRTC is not installed (pip install nvidia-cuda-nvrtc-cu12)")
    return nvrtc


@pytest.fixture(scope="module", params=KERNEL_MODULES)
def kernel_module(request):
    return importlib.import_module(request.param)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_kernel_instance_compiles(compiler, kernel_module, arch):
    names = kernel_module.name_expressions()
    assert names, "a kernel module must name the instances it launches"
    compiled = compiler.compile_source(kernel_module.SOURCE, names, [*kernel_module.OPTIONS, *CUPY_APPENDS], arch)
    assert set(compiled.lowered) == set(names)
    for mangled in compiled.lowered.values():
        assert f".entry {mangled}(" in compiled.ptx  # each instance is a real kernel in the module
    assert len(compiled.cubin) > 0
    assert "warning" not in compiled.log.lower(), compiled.log


@pytest.mark.parametrize("arch", ARCHS)
def test_bit_identical_kernels_have_no_fused_multiply_add(compiler, arch):
    for name in sorted(BIT_IDENTICAL):
        module = importlib.import_module(name)
        ptx = compiler.compile_source(
            module.SOURCE, module.name_expressions(), [*module.OPTIONS, *CUPY_APPENDS], arch
        ).ptx
        fused = [line.strip() for line in ptx.splitlines() if re.match(r"\s*fma\.", line)]
        assert not fused, f"{name}: {len(fused)} fused multiply-adds, e.g. {fused[:3]}"
        # float32 pixels and samples go through the bits, never a flushing conversion of a subnormal
        flushing = [line.strip() for line in ptx.splitlines() if re.match(r"\s*cvt\.\w*ftz\w*\.f64\.f32", line)]
        assert not flushing, f"{name}: float32 read through a flushing conversion: {flushing[:3]}"


def test_a_broken_kernel_fails_to_compile(compiler, kernel_module):
    """The check can fail: an undefined identifier in the body is NVRTC's error, with its log."""
    broken = kernel_module.SOURCE.replace("{", "{ undefined_identifier_here;", 2)
    with pytest.raises(nvrtc.CompileError, match="undefined_identifier_here"):
        compiler.compile_source(broken, kernel_module.name_expressions(), list(kernel_module.OPTIONS), 80)


def test_the_fma_check_can_fail(compiler):
    """Without -fmad=false and the _rn intrinsics, NVRTC contracts a * b + c: the PTX check sees it."""
    source = 'extern "C" __global__ void f(const double* a, double* b) { b[0] = a[0] * a[1] + a[2]; }'
    ptx = compiler.compile_source(source, [], [], 80).ptx
    assert any(re.match(r"\s*fma\.", line) for line in ptx.splitlines())
