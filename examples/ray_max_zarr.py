"""ray_max on an image read from a zarr store, the result written to zarr, never gathered in one place.

Run: python examples/ray_max_zarr.py [directory] [size] [chunk]
     (needs the dask extra: pip install "gpuvec[dask]"; defaults: a temporary directory, 2000, 500)

The image is written to ``<directory>/image.zarr`` first (a stand-in for an image too big for
memory), then read lazily with ``dask.array.from_zarr``; ``gpuvec.ray_max`` builds one task per
output chunk that reads only the input boxes its samples touch, and ``dask.array.to_zarr`` writes
each output chunk as soon as it is computed. Nothing here starts a cluster: the tasks run on
dask's threaded scheduler, or on the ``distributed.Client`` you started before (see the README).
"""

from __future__ import annotations

import pathlib
import sys
import tempfile
import time

import dask
import dask.array as da
import numpy as np
import zarr

import gpuvec


def main(directory: pathlib.Path, size: int = 2000, chunk: int = 500) -> None:
    # A test image: smooth hills plus noise, float32, written chunk by chunk.
    store = zarr.open_array(
        str(directory / "image.zarr"), mode="w", shape=(size, size), chunks=(chunk, chunk), dtype="f4"
    )
    rng = np.random.default_rng(0)
    for r in range(0, size, chunk):
        rows = np.arange(r, min(size, r + chunk))[:, None]
        cols = np.arange(size)[None, :]
        block = np.sin(rows / 97.0) * np.cos(cols / 53.0) + 0.1 * rng.random((len(rows), size))
        store[r : r + len(rows)] = block.astype("f4")

    image = da.from_zarr(str(directory / "image.zarr"))  # lazy: nothing is read yet
    origin = (0.31 * size, 0.71 * size)
    best, arg = gpuvec.ray_max(image, origin, num=5)  # lazy dask arrays, chunked like the image

    # Both outputs in one pass (each block task gives both), written chunk by chunk as they are computed.
    writes = [
        da.to_zarr(best, str(directory / "ray_max.zarr"), overwrite=True, compute=False),
        da.to_zarr(arg, str(directory / "ray_argmax.zarr"), overwrite=True, compute=False),
    ]
    start = time.perf_counter()
    dask.compute(*writes)
    elapsed = time.perf_counter() - start

    out = zarr.open_array(str(directory / "ray_max.zarr"), mode="r")
    print(f"ray_max of a {size}x{size} float32 image in {chunk}x{chunk} chunks, origin {origin}: {elapsed:.2f} s")
    print(f"written to {directory / 'ray_max.zarr'} (shape {out.shape}, chunks {out.chunks}, dtype {out.dtype})")
    corner = np.asarray(out[:3, :3])
    print("its top-left corner:\n", corner)


if __name__ == "__main__":
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    chunk = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    if len(sys.argv) > 1:
        main(pathlib.Path(sys.argv[1]), size, chunk)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(pathlib.Path(tmp), size, chunk)
