"""NVRTC, the CUDA runtime compiler, through ctypes: it compiles CUDA C++ to PTX and CUBIN without a GPU or
a driver, so CPU-only CI can check every kernel gpuvec can send to a device (tests/core/test_cuda_sources.py).

The library comes from the ``nvidia-cuda-nvrtc-cu12`` wheel (``pip install nvidia-cuda-nvrtc-cu12``), or
from a CUDA toolkit (``CUDA_PATH``, or the loader's search path).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from dataclasses import dataclass

_lib: ctypes.CDLL | None = None


def _candidates() -> list[str]:
    paths = []
    try:
        import nvidia.cuda_nvrtc as wheel  # the pip wheel

        for root in wheel.__path__:
            paths += sorted(glob.glob(os.path.join(root, "lib", "libnvrtc.so*")))
    except ImportError:
        pass
    cuda = os.environ.get("CUDA_PATH") or os.environ.get("CUDA_HOME")
    if cuda:
        paths += sorted(glob.glob(os.path.join(cuda, "lib64", "libnvrtc.so*")))
    found = ctypes.util.find_library("nvrtc")
    if found:
        paths.append(found)
    return [p for p in paths if "builtins" not in p and ".alt." not in p]


def load() -> ctypes.CDLL | None:
    """The NVRTC library, or None where none is installed."""
    global _lib
    if _lib is None:
        for path in _candidates():
            try:
                _lib = ctypes.CDLL(path)
                break
            except OSError:
                continue
    return _lib


def version() -> tuple[int, int]:
    lib = load()
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return major.value, minor.value


class CompileError(RuntimeError):
    """NVRTC refused the source; the message holds its log."""


@dataclass
class Compiled:
    ptx: str
    cubin: bytes
    lowered: dict[str, str]  # name expression -> mangled name
    log: str


def _check(lib: ctypes.CDLL, status: int, what: str) -> None:
    if status != 0:
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        raise CompileError(f"{what}: {lib.nvrtcGetErrorString(status).decode()}")


def compile_source(source: str, name_expressions: list[str], options: list[str], arch: int) -> Compiled:
    """Compile ``source`` for ``sm_<arch>`` (a CUBIN: NVRTC and ptxas) and ``compute_<arch>`` (its PTX)."""
    lib = load()
    if lib is None:
        raise CompileError("NVRTC is not installed: pip install nvidia-cuda-nvrtc-cu12")
    results = {}
    for target in (f"--gpu-architecture=compute_{arch}", f"--gpu-architecture=sm_{arch}"):
        prog = ctypes.c_void_p()
        _check(lib, lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"gpuvec.cu", 0, None, None), "create")
        try:
            for expr in name_expressions:
                _check(lib, lib.nvrtcAddNameExpression(prog, expr.encode()), f"name expression {expr}")
            opts = [o.encode() for o in (*options, target)]
            status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
            size = ctypes.c_size_t()
            lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
            buf = ctypes.create_string_buffer(size.value)
            lib.nvrtcGetProgramLog(prog, buf)
            log = buf.value.decode(errors="replace")
            if status != 0:
                raise CompileError(f"NVRTC failed ({target}):\n{log}")
            lowered = {}
            for expr in name_expressions:
                name = ctypes.c_char_p()
                _check(lib, lib.nvrtcGetLoweredName(prog, expr.encode(), ctypes.byref(name)), f"lowered {expr}")
                lowered[expr] = name.value.decode()
            getter = "PTX" if "compute_" in target else "CUBIN"
            _check(lib, getattr(lib, f"nvrtcGet{getter}Size")(prog, ctypes.byref(size)), f"{getter} size")
            out = ctypes.create_string_buffer(size.value)
            _check(lib, getattr(lib, f"nvrtcGet{getter}")(prog, out), getter)
            results[getter] = (out.raw[: size.value], lowered, log)
        finally:
            lib.nvrtcDestroyProgram(ctypes.byref(prog))
    ptx, lowered, log = results["PTX"]
    return Compiled(ptx.rstrip(b"\0").decode(), results["CUBIN"][0], lowered, log)
