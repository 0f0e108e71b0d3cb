"""Reading and writing images: TIFF, ``.npy`` and ``.zarr``, in memory or lazily (dask).

The libraries do the work: tifffile (TIFF files, and its zarr interface to read only the
strips or tiles a chunk needs), numpy (``.npy``, memory-mapped when lazy), zarr and dask.

Lazy reading. With ``--chunks`` an input becomes a dask array (``dask.array.map_blocks``)
whose every block is read by :func:`read_block` from the file's *path*: a ``.npy``, or a
TIFF stored uncompressed and contiguous, is memory-mapped for that block (the header,
parsed once by numpy or tifffile, gives the offset); any other TIFF is read through
``tifffile.imread(path, selection=...)``, tifffile's zarr store over the file, which
decodes only the strips or tiles the block needs and closes the file after. The graph
holds file names, not open files (tifffile's zarr store cannot be pickled): no file stays
open, and ``dask.distributed`` workers unpickle the graph and read their own blocks. A
``.zarr`` folder is opened with ``dask.array.from_zarr``, which does the same by itself.

Writers here write to the path they are given; :mod:`.batch` gives them a temporary name
and moves the result into place.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._common import ZARR_EXTRA, CliError, describe

__all__ = [
    "LABEL_SUFFIXES",
    "OUTPUT_SUFFIXES",
    "TIFF_SUFFIXES",
    "check_input",
    "import_dask",
    "import_tifffile",
    "import_zarr",
    "is_dask",
    "open_lazy",
    "read",
    "read_array",
    "read_block",
    "write_tiff",
    "write_tiff_tiled",
    "write_zarr",
]

LABEL_SUFFIXES = (".tif", ".tiff", ".npy", ".zarr")
TIFF_SUFFIXES = (".tif", ".tiff")
OUTPUT_SUFFIXES = (".tif", ".tiff", ".zarr")


# --------------------------------------------------------------------------------------
# Optional libraries: a clear one-line error when one is missing
# --------------------------------------------------------------------------------------


def import_tifffile():
    """tifffile (the [io] extra), or ``CliError`` saying how to install it."""
    try:
        import tifffile  # optional dependency, imported when a TIFF is read or written
    except ImportError:  # pragma: no cover - tifffile is in the [io] extra
        raise CliError(
            "reading and writing TIFF needs tifffile: pip install 'napari-losslens[io]'"
        ) from None
    return tifffile


def import_zarr():
    """zarr (the [zarr] extra), or ``CliError`` saying how to install it."""
    try:
        import zarr  # optional dependency, imported when a .zarr is read or written
    except ImportError:
        raise CliError(f"reading and writing .zarr needs zarr: {ZARR_EXTRA}") from None
    return zarr


def import_dask():
    """dask.array (the [zarr] extra), or ``CliError`` saying how to install it."""
    try:
        import dask.array as da  # optional dependency, imported for --chunks only
    except ImportError:
        raise CliError(f"--chunks needs dask: {ZARR_EXTRA}") from None
    return da


def is_dask(x) -> bool:
    """Whether ``x`` is a dask array (without importing dask)."""
    return type(x).__module__.startswith("dask.") and hasattr(x, "chunks")


# --------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------


def check_input(path: Path) -> str:
    """The lower-case suffix of an input file that exists; ``CliError`` otherwise."""
    suffix = path.suffix.lower()
    if suffix not in LABEL_SUFFIXES:
        raise CliError(
            f"unsupported file type {path.suffix or '(none)'!r} "
            f"(expected {', '.join(LABEL_SUFFIXES)})"
        )
    if not path.exists():
        raise CliError("no such file")
    if suffix == ".zarr":
        if not path.is_dir():
            raise CliError("a .zarr input must be a zarr array folder")
    elif path.is_dir():
        raise CliError("is a folder, not a file")
    return suffix


def _kind(suffix: str) -> str:
    return {".npy": ".npy", ".zarr": "zarr array"}.get(suffix, "TIFF")


def _cannot_read(suffix: str, err: BaseException) -> CliError:
    return CliError(f"cannot read it as a {_kind(suffix)} file: {describe(err)}")


def read_array(path: Path) -> np.ndarray:
    """A numpy array from a TIFF, ``.npy`` or ``.zarr``; ``CliError`` with the reason otherwise."""
    suffix = check_input(path)
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".zarr":
            return np.asarray(import_zarr().open_array(str(path), mode="r")[...])
        return import_tifffile().imread(path)
    except CliError:
        raise
    except Exception as err:
        raise _cannot_read(suffix, err) from err


def _header(path: Path, suffix: str) -> tuple[tuple[int, ...], np.dtype, tuple]:
    """The shape and dtype of a ``.npy`` or of a TIFF's first series, and how to read blocks.

    The way is ``("memmap", offset, dtype, order)`` for a ``.npy`` and for a TIFF stored
    uncompressed and contiguous (the pixels are memory-mapped from ``offset``), or
    ``("zarr",)`` for any other TIFF (tifffile's zarr store decodes the strips or tiles a
    block needs). No pixel is read.
    """
    if suffix == ".npy":
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
        order = "F" if mm.flags.f_contiguous and not mm.flags.c_contiguous else "C"
        way = ("memmap", int(mm.offset), mm.dtype.str, order)
        return tuple(mm.shape), mm.dtype, way
    with import_tifffile().TiffFile(path) as tf:
        series = tf.series[0]
        shape, dtype = tuple(series.shape), np.dtype(series.dtype)
        if series.dataoffset is None:
            return shape, dtype, ("zarr",)
        stored = dtype.newbyteorder(tf.byteorder)
        return shape, dtype, ("memmap", int(series.dataoffset), stored.str, "C")


def read_block(path: str, way: tuple, shape: tuple[int, ...], block_info=None) -> np.ndarray:
    """One block of a lazily read TIFF or ``.npy`` (a ``dask.array.map_blocks`` function).

    The block's place comes from dask's ``block_info``; the file is opened for this block
    only, the way :func:`_header` chose. A file that cannot be decoded (a damaged strip) or
    that changed since the array was made raises ``CliError``, which the batch reports as
    that file's error.
    """
    where = tuple(slice(a, b) for a, b in block_info[None]["array-location"])
    suffix = Path(path).suffix.lower()
    try:
        if way[0] == "zarr":
            block = import_tifffile().imread(path, selection=where)
        else:
            _, offset, stored, order = way
            mm = np.memmap(path, dtype=stored, mode="r", offset=offset, shape=shape, order=order)
            block = np.array(mm[where], dtype=np.dtype(stored).newbyteorder("="))
            del mm  # unmaps the file
    except CliError:
        raise
    except Exception as err:
        raise _cannot_read(suffix, err) from err
    if block.shape != tuple(b.stop - b.start for b in where):
        raise CliError(f"cannot read it as a {_kind(suffix)} file: it changed while it was read")
    return block


def open_lazy(path: Path, chunks: tuple[int, ...]):
    """A file as a dask array with ``chunks`` (one value for every axis, or one per axis)."""
    suffix = check_input(path)
    da = import_dask()
    try:
        if suffix == ".zarr":
            source = import_zarr().open_array(str(path), mode="r")
            shape, dtype = tuple(source.shape), source.dtype
        else:
            shape, dtype, way = _header(path, suffix)
    except CliError:
        raise
    except Exception as err:
        raise _cannot_read(suffix, err) from err
    if len(chunks) not in (1, len(shape)):
        raise CliError(
            f"--chunks {','.join(map(str, chunks))} has {len(chunks)} values for an image "
            f"of {len(shape)} axes {shape}"
        )
    per_axis = chunks * len(shape) if len(chunks) == 1 else chunks
    per_axis = tuple(min(c, max(n, 1)) for c, n in zip(per_axis, shape, strict=True))
    if suffix == ".zarr":
        return da.from_zarr(source, chunks=per_axis)
    stat = os.stat(path)
    from dask.base import tokenize  # dask is optional: imported with dask.array above

    name = "losslens-read-" + tokenize(str(path), stat.st_mtime_ns, stat.st_size, way, per_axis)
    return da.map_blocks(
        read_block,
        str(path),
        way,
        shape,
        name=name,
        chunks=da.core.normalize_chunks(per_axis, shape, dtype=dtype),
        dtype=dtype,
        meta=np.empty((0,) * len(shape), dtype),
    )


def read(path: Path, chunks: tuple[int, ...] | None):
    """An input in memory (numpy), or lazily as a dask array when ``--chunks`` is given."""
    return read_array(path) if chunks is None else open_lazy(path, chunks)


# --------------------------------------------------------------------------------------
# Writing (to the path given: the caller makes it atomic)
# --------------------------------------------------------------------------------------


def write_tiff(path: Path, array: np.ndarray) -> None:
    """An in-memory array to a new TIFF file (``path`` must not exist)."""
    tifffile = import_tifffile()
    with open(path, "xb") as fh:
        tifffile.imwrite(fh, array, photometric="minisblack")


def tile_shape(shape: tuple[int, ...], edge: int = 256) -> tuple[int, int]:
    """TIFF tiles: ``edge`` pixels square, or smaller for a small image (multiples of 16)."""
    return tuple(min(edge, -(-max(n, 1) // 16) * 16) for n in shape[-2:])  # type: ignore[return-value]


def _plane_tiles(strips, width: int, tile: tuple[int, int], dtype):
    """TIFF tiles, row by row, from an iterator of full-width strips of one plane."""
    ty, tx = tile
    buf = np.empty((0, width), dtype)
    strips = iter(strips)
    while True:
        parts = [buf]
        rows = buf.shape[0]
        for strip in strips:
            parts.append(np.asarray(strip, dtype))
            rows += parts[-1].shape[0]
            if rows >= ty:
                break
        buf = np.concatenate(parts) if len(parts) > 1 else buf
        if buf.shape[0] == 0:
            return
        band, buf = buf[:ty], buf[ty:]
        for x0 in range(0, width, tx):
            piece = band[:, x0 : x0 + tx]
            if piece.shape != tile:
                padded = np.zeros(tile, dtype)
                padded[: piece.shape[0], : piece.shape[1]] = piece
                piece = padded
            yield np.ascontiguousarray(piece)


def _dask_tiles(array, tile: tuple[int, int]):
    """The tiles of a 2D or 3D dask array in TIFF order, computing one row of chunks at a time.

    2D: one row of chunks (chunk height × width) is held at a time. 3D: one layer of chunks
    along the first axis, since a TIFF stores its planes one after the other.
    """
    dtype, width = array.dtype, array.shape[-1]
    if array.ndim == 2:
        strips = (array.blocks[i, :].compute() for i in range(array.numblocks[0]))
        yield from _plane_tiles(strips, width, tile, dtype)
        return
    for k in range(array.numblocks[0]):
        for plane in array.blocks[k].compute():
            yield from _plane_tiles([plane], width, tile, dtype)


def write_tiff_tiled(path: Path, array) -> None:
    """A dask array to a new tiled TIFF (BigTIFF when over 4 GB), written tile by tile."""
    tifffile = import_tifffile()
    if array.ndim not in (2, 3):
        raise CliError(f"cannot write a {array.ndim}D array as a TIFF of planes")
    tile = tile_shape(array.shape)
    big = int(np.prod(array.shape)) * array.dtype.itemsize > 2**32 - 2**25
    with open(path, "xb") as fh, tifffile.TiffWriter(fh, bigtiff=big) as tw:
        tw.write(
            _dask_tiles(array, tile),
            shape=array.shape,
            dtype=array.dtype,
            tile=tile,
            photometric="minisblack",
        )


def write_zarr(path: Path, array) -> None:
    """An array to a new ``.zarr`` folder, chunk by chunk (a dask array's chunks are kept)."""
    import_zarr()
    da = import_dask()
    if not is_dask(array):
        array = da.from_array(array, chunks="auto")
    regular = {}  # zarr needs equal chunks (but the last); a halo may have evened them out
    for axis, sizes in enumerate(array.chunks):
        if len(set(sizes[:-1])) > 1 or (len(sizes) > 1 and sizes[-1] > sizes[0]):
            regular[axis] = max(sizes)
    if regular:
        array = array.rechunk(regular)
    array.to_zarr(str(path))
