"""Memory-bandwidth floors on the GPU, next to the fused kernels' own times (CUDA events)."""

from __future__ import annotations

import cupy as cp
import numpy as np

import gpuvec


def timed(fn, repeat=20):
    fn()
    start, stop = cp.cuda.Event(), cp.cuda.Event()
    start.record()
    for _ in range(repeat):
        fn()
    stop.record()
    stop.synchronize()
    return cp.cuda.get_elapsed_time(start, stop) / repeat * 1e-3


def copy_bandwidth(nbytes=1 << 30):
    """Bytes per second of a device-to-device copy, reads and writes counted."""
    src = cp.empty(nbytes, cp.uint8)
    dst = cp.empty_like(src)
    return 2 * nbytes / timed(lambda: cp.copyto(dst, src))


def main():
    bw = copy_bandwidth()
    print(f"device copy: {bw / 1e9:.0f} GB/s (read + write)")
    for dtype in (np.float32, np.float64):
        for num in (5, 50):
            img = cp.asarray(np.random.default_rng(0).random((3000, 3000)).astype(dtype))
            t = timed(lambda img=img, num=num: gpuvec.ray_max(img, (1500, 1000), num))
            moved = img.nbytes * 2 + img.size  # image read, max written, uint8 argmax written
            name = f"ray_max 3000x3000 {np.dtype(dtype).name} num={num}"
            print(f"{name}: {t * 1e3:.3f} ms; floor {moved / bw * 1e3:.3f} ms ({t * bw / moved:.1f}x floor)")
    R = cp.asarray(np.resize(np.linalg.qr(np.random.default_rng(0).normal(size=(1000, 3, 3)))[0], (10_000_000, 3, 3)))
    t = timed(lambda: gpuvec.is_rotation(R))
    moved = R.nbytes + R.shape[0]
    print(
        f"is_rotation 10M 3x3 float64: {t * 1e3:.3f} ms; floor {moved / bw * 1e3:.3f} ms ({t * bw / moved:.1f}x floor)"
    )


if __name__ == "__main__":
    main()
