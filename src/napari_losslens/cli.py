"""The ``losslens`` command line: U-Net weight maps and loss maps for files, and a demo.

Files in, files out, through :mod:`napari_losslens.core`. napari and Qt are imported only by
``losslens demo``; ``weights`` and ``loss`` run on a machine without a screen.

Conventions shared by the subcommands:

- Results go to stdout (the summary, the loss values or table); progress bars and errors go
  to stderr, one line per bad file, naming the file and what is wrong.
- A bad file does not stop the others. Exit status: 0 when everything was done, 1 when any
  file failed (or an output was refused), 2 for a usage error (nothing was done).
- Nothing is overwritten unless ``--overwrite`` is given, and an output file is never left
  half-written: it is written to a temporary file (or folder, for ``.zarr``) in the same
  folder and moved into place. ``--skip-existing`` skips outputs that exist instead.
- SIGINT or SIGTERM stops a batch cleanly: the output in progress is removed, the finished
  ones are kept, the files not done are listed on stderr, and the exit status is 130
  (SIGINT) or 143 (SIGTERM); a rerun with ``--skip-existing`` finishes the rest.
- ``--chunks`` reads each file lazily as a dask array and writes the result chunk by chunk
  (tiled TIFF, or zarr), on dask's threads, a local cluster (``--workers``) or a
  ``dask.distributed`` scheduler (``--scheduler``).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["main"]

PROG = "losslens"
LABEL_SUFFIXES = (".tif", ".tiff", ".npy", ".zarr")
TIFF_SUFFIXES = (".tif", ".tiff")
OUTPUT_SUFFIXES = (".tif", ".tiff", ".zarr")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

ZARR_EXTRA = "pip install 'napari-losslens[zarr]'"
DISTRIBUTED_EXTRA = "pip install 'napari-losslens[distributed]'"

# Test-only hook: seconds to sleep after an output is written to its temporary file and
# before it is renamed into place, so that the tests can interrupt a batch mid-file.
# Not an option for users; it does nothing when unset.
_TEST_DELAY_ENV = "LOSSLENS_TEST_DELAY"


class CliError(Exception):
    """A problem with one file: reported as one line, the other files go on."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that dask and the batch loop stop the same way."""

    signum = signal.SIGTERM


# --------------------------------------------------------------------------------------
# Small helpers: parsing option values, reading and writing arrays
# --------------------------------------------------------------------------------------


def _parse_class_weights(text: str):
    t = text.strip().lower()
    if t in ("none", ""):
        return None
    if t == "balanced":
        return "balanced"
    parts = [p for p in t.replace(";", ",").split(",") if p.strip()]
    try:
        pair = tuple(float(p) for p in parts)
    except ValueError:
        pair = ()
    if len(pair) != 2:
        raise argparse.ArgumentTypeError(
            f"expected 'none', 'balanced' or two numbers 'BG,FG', got {text!r}"
        )
    return pair


def _parse_spacing(text: str):
    t = text.strip().lower()
    if t in ("none", ""):
        return None
    try:
        values = tuple(float(p) for p in t.split(",") if p.strip())
    except ValueError:
        values = ()
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected one positive number or one per axis, comma-separated (e.g. 2,1,1), "
            f"got {text!r}"
        )
    return values[0] if len(values) == 1 else values


def _parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _parse_chunks(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        values = ()
    if not values or not all(v > 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected a positive number of pixels, or one per axis, comma-separated "
            f"(e.g. 64,512,512), got {text!r}"
        )
    return values


def _check_input(path: Path) -> str:
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


def _import_zarr():
    try:
        import zarr
    except ImportError:
        raise CliError(f"reading and writing .zarr needs zarr: {ZARR_EXTRA}") from None
    return zarr


def _read_array(path: Path):
    """A numpy array from a TIFF, ``.npy`` or ``.zarr``; ``CliError`` with the reason otherwise."""
    import numpy as np

    suffix = _check_input(path)
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".zarr":
            return np.asarray(_import_zarr().open_array(str(path), mode="r")[...])
        tifffile = _import_tifffile()
        return tifffile.imread(path)
    except CliError:
        raise
    except Exception as err:
        raise CliError(f"cannot read it as a {_kind(suffix)} file: {_describe(err)}") from err


class _LazyFile:
    """A TIFF or ``.npy`` file as a sliceable array (``shape``, ``dtype``, ``[...]``) for dask.

    The file is opened on first use in each process and pickled as its path, so that
    ``dask.distributed`` workers read their own blocks. ``.npy`` files are memory-mapped;
    TIFF files too when stored uncompressed and contiguous, else read through tifffile's
    zarr store (only the strips or tiles a block needs), or whole (once per process) when
    zarr is missing.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype) -> None:
        self.path = str(path)
        self.shape = tuple(shape)
        self.dtype = dtype
        self.ndim = len(self.shape)
        self._array = None
        self._token = (self.path, os.stat(path).st_mtime_ns, os.stat(path).st_size)

    @classmethod
    def open(cls, path: Path, suffix: str) -> _LazyFile:
        import numpy as np

        if suffix == ".npy":
            mm = np.load(path, mmap_mode="r", allow_pickle=False)
            return cls(path, mm.shape, mm.dtype)
        tifffile = _import_tifffile()
        with tifffile.TiffFile(path) as tf:
            series = tf.series[0]
            return cls(path, series.shape, series.dtype)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_array"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _array=None)

    def __dask_tokenize__(self):
        return ("losslens-file", *self._token)

    def _open(self):
        if self._array is not None:
            return self._array
        import numpy as np

        if self.path.lower().endswith(".npy"):
            self._array = np.load(self.path, mmap_mode="r", allow_pickle=False)
            return self._array
        import tifffile

        try:
            self._array = tifffile.memmap(self.path, mode="r")
        except Exception:  # compressed or not contiguous: not memory-mappable
            try:
                import zarr  # noqa: F401
            except ImportError:
                self._array = tifffile.imread(self.path)
            else:
                self._array = _TIFF_STORE  # read each block through a zarr store
        if self._array is not _TIFF_STORE and tuple(self._array.shape) != self.shape:
            raise ValueError(f"{self.path} changed while it was read")
        return self._array

    def __getitem__(self, key):
        import numpy as np

        array = self._open()
        if array is not _TIFF_STORE:
            return np.asarray(array[key])
        import tifffile
        import zarr

        # the store holds the file open: open it per block, close it after
        with tifffile.imread(self.path, aszarr=True) as store:
            z = zarr.open(store, mode="r")
            z = z if hasattr(z, "shape") else z["0"]  # a pyramid's full-resolution level
            return np.asarray(z[key])


_TIFF_STORE = object()  # marks a TIFF that is read block by block through tifffile's zarr store


def _open_lazy(path: Path, chunks: tuple[int, ...]):
    """A file as a dask array with ``chunks`` (one value for every axis, or one per axis)."""
    suffix = _check_input(path)
    da = _import_dask()
    try:
        if suffix == ".zarr":
            zarr = _import_zarr()
            source = zarr.open_array(str(path), mode="r")
        else:
            source = _LazyFile.open(path, suffix)
    except CliError:
        raise
    except Exception as err:
        raise CliError(f"cannot read it as a {_kind(suffix)} file: {_describe(err)}") from err
    if len(chunks) not in (1, len(source.shape)):
        raise CliError(
            f"--chunks {','.join(map(str, chunks))} has {len(chunks)} values for an image "
            f"of {len(source.shape)} axes {tuple(source.shape)}"
        )
    per_axis = chunks * len(source.shape) if len(chunks) == 1 else chunks
    per_axis = tuple(min(c, max(n, 1)) for c, n in zip(per_axis, source.shape, strict=True))
    if suffix == ".zarr":
        return da.from_zarr(source, chunks=per_axis)
    return da.from_array(source, chunks=per_axis, asarray=True, meta=_empty(source.dtype))


def _empty(dtype):
    import numpy as np

    return np.empty((0,), dtype)


def _import_dask():
    try:
        import dask.array as da
    except ImportError:
        raise CliError(f"--chunks needs dask: {ZARR_EXTRA}") from None
    return da


def _read(path: Path, chunks: tuple[int, ...] | None):
    """An input in memory (numpy), or lazily as a dask array when ``--chunks`` is given."""
    return _read_array(path) if chunks is None else _open_lazy(path, chunks)


def _import_tifffile():
    try:
        import tifffile
    except ImportError:  # pragma: no cover - tifffile is in the [io] extra
        raise CliError(
            "reading and writing TIFF needs tifffile: pip install 'napari-losslens[io]'"
        ) from None
    return tifffile


def _describe(err: BaseException) -> str:
    """One line for an exception: its message, with its type when the message is bare."""
    msg = " ".join(str(err).split())
    if not msg or isinstance(err, (KeyError, IndexError, AttributeError)):
        return f"{type(err).__name__}: {msg}" if msg else type(err).__name__
    return msg


def _atomic_write(path: Path, write: Callable[[Path], None], overwrite: bool) -> None:
    """Write ``path`` through ``write(tmp)`` on a temporary file next to it, then rename.

    The temporary file keeps the target's suffix (some writers choose the format by it) and
    is removed when anything fails, so no partial output is ever left behind.
    """
    if path.exists() and not overwrite:
        raise CliError(f"{path} exists; pass --overwrite to replace it")
    tmp = _temp_name(path)
    try:
        write(tmp)
        _test_delay()
        if not overwrite and path.exists():
            raise CliError(f"{path} exists; pass --overwrite to replace it")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")


def _test_delay() -> None:
    """Test-only: sleep ``$LOSSLENS_TEST_DELAY`` seconds (see ``_TEST_DELAY_ENV``)."""
    delay = os.environ.get(_TEST_DELAY_ENV)
    if delay:
        time.sleep(float(delay))


def _atomic_write_dir(
    path: Path, write: Callable[[Path], None], overwrite: bool, quiesce: Callable[[], None]
) -> None:
    """:func:`_atomic_write` for an output folder (zarr): a temporary folder, then renamed.

    A replaced output is first moved aside and deleted once the new one is in place. When
    the write is interrupted, ``quiesce()`` first stops the tasks that may still be writing
    chunks, so that none lands in the temporary folder after it is removed.
    """
    if path.exists() and not overwrite:
        raise CliError(f"{path} exists; pass --overwrite to replace it")
    tmp = _temp_name(path)
    try:
        write(tmp)
        _test_delay()
        if path.exists() or path.is_symlink():
            if not overwrite:
                raise CliError(f"{path} exists; pass --overwrite to replace it")
            old = path.with_name(f".{path.name}.{secrets.token_hex(4)}.old")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    except KeyboardInterrupt:
        quiesce()
        raise
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _write_tiff(path: Path, array, overwrite: bool) -> None:
    tifffile = _import_tifffile()

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            tifffile.imwrite(fh, array, photometric="minisblack")

    _atomic_write(path, write, overwrite)


def _tile_shape(shape: tuple[int, ...], edge: int = 256) -> tuple[int, int]:
    """TIFF tiles: ``edge`` pixels square, or smaller for a small image (multiples of 16)."""
    return tuple(min(edge, -(-max(n, 1) // 16) * 16) for n in shape[-2:])  # type: ignore[return-value]


def _plane_tiles(strips, width: int, tile: tuple[int, int], dtype):
    """TIFF tiles, row by row, from an iterator of full-width strips of one plane."""
    import numpy as np

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


def _write_tiff_chunked(path: Path, array, overwrite: bool) -> None:
    """A dask array to a tiled TIFF (BigTIFF when over 4 GB), written tile by tile."""
    import numpy as np

    tifffile = _import_tifffile()
    if array.ndim not in (2, 3):
        raise CliError(f"cannot write a {array.ndim}D array as a TIFF of planes")
    tile = _tile_shape(array.shape)
    big = int(np.prod(array.shape)) * array.dtype.itemsize > 2**32 - 2**25

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh, tifffile.TiffWriter(fh, bigtiff=big) as tw:
            tw.write(
                _dask_tiles(array, tile),
                shape=array.shape,
                dtype=array.dtype,
                tile=tile,
                photometric="minisblack",
            )

    _atomic_write(path, write, overwrite)


def _write_zarr(path: Path, array, overwrite: bool, engine: _Engine) -> None:
    """An array to a ``.zarr`` folder, chunk by chunk (a dask array's chunks are kept)."""
    _import_zarr()
    da = _import_dask()
    if not engine.is_dask(array):
        array = da.from_array(array, chunks="auto")
    regular = {}  # zarr needs equal chunks (but the last); a halo may have evened them out
    for axis, sizes in enumerate(array.chunks):
        if len(set(sizes[:-1])) > 1 or (len(sizes) > 1 and sizes[-1] > sizes[0]):
            regular[axis] = max(sizes)
    if regular:
        array = array.rechunk(regular)

    def write(tmp: Path) -> None:
        array.to_zarr(str(tmp))

    _atomic_write_dir(path, write, overwrite, engine.quiesce)


def _write_output(path: Path, array, overwrite: bool, engine: _Engine) -> None:
    """A result, as float32, to ``path``: ``.zarr`` or TIFF (tiled when chunked)."""
    import numpy as np

    if path.suffix.lower() == ".zarr":
        _write_zarr(path, array.astype(np.float32), overwrite, engine)
    elif engine.is_dask(array):
        _write_tiff_chunked(path, array.astype(np.float32), overwrite)
    else:
        _write_tiff(path, np.asarray(array, dtype=np.float32), overwrite)


class _Engine:
    """Where dask computes during a run: threads (default), a local cluster, or a scheduler.

    Without ``--chunks`` nothing is set up and inputs are read into memory. ``quiesce()``
    stops the computation in flight (after an interruption) so that no task writes any
    more; ``close()`` shuts everything down.
    """

    def __init__(self, chunks, workers: int | None, scheduler: str | None) -> None:
        self.chunks = chunks
        self.workers = workers
        self.scheduler = scheduler
        self._stack = contextlib.ExitStack()
        self._pool = None
        self._cluster = None
        self._client = None

    @staticmethod
    def is_dask(x) -> bool:
        return type(x).__module__.startswith("dask.") and hasattr(x, "chunks")

    def start(self) -> None:
        if self.chunks is None:
            return
        import dask

        if self.workers is None and self.scheduler is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix=PROG)
            self._stack.enter_context(dask.config.set(scheduler="threads", pool=self._pool))
            return
        import logging

        from distributed import Client, LocalCluster

        # An interrupted gather leaves a task that asyncio reports as "exception never
        # retrieved" (AllExit) with a traceback: expected after Ctrl-C, not news for the
        # user. Task errors reach us as exceptions anyway.
        asyncio_logger = logging.getLogger("asyncio")
        self._stack.callback(asyncio_logger.setLevel, asyncio_logger.level)
        asyncio_logger.setLevel(logging.CRITICAL)
        if self.workers is not None:
            self._cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.CRITICAL,  # errors in tasks reach us as exceptions
            )
            self._client = Client(self._cluster, set_as_default=False)
        else:
            self._client = Client(self.scheduler, timeout="20s", set_as_default=False)
        self._stack.enter_context(dask.config.set(scheduler=self._client))

    def describe(self) -> str:
        if self.chunks is None:
            return ""
        chunks = ",".join(map(str, self.chunks))
        if self.workers is not None:
            return f"chunks={chunks}, {self.workers} local worker(s)"
        if self.scheduler is not None:
            return f"chunks={chunks}, scheduler {self.scheduler}"
        return f"chunks={chunks}, threads"

    def quiesce(self) -> None:
        """Stop the tasks in flight: wait for the threads, or stop the local cluster."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        elif self._cluster is not None:
            self._close_distributed()
        elif self._client is not None:  # a remote scheduler: forget what is queued
            with contextlib.suppress(Exception):
                self._client.cancel(list(self._client.futures.values()), force=True)

    def _close_distributed(self) -> None:
        for obj in (self._client, self._cluster):
            if obj is not None:
                with contextlib.suppress(Exception):
                    obj.close()
        self._client = self._cluster = None

    def close(self) -> None:
        self._stack.close()
        self._close_distributed()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _make_engine(parser: argparse.ArgumentParser, args: argparse.Namespace) -> _Engine:
    """Check ``--chunks``, ``--workers``, ``--scheduler`` (usage errors); nothing started yet."""
    if args.workers is not None and args.scheduler is not None:
        parser.error("--workers and --scheduler exclude each other: give one")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers {args.workers}: expected at least 1")
    if args.chunks is None and (args.workers is not None or args.scheduler is not None):
        option = "--workers" if args.workers is not None else "--scheduler"
        parser.error(f"{option} needs --chunks (the size of the pieces to distribute)")
    if args.chunks is not None:
        try:
            import dask.array  # noqa: F401
        except ImportError:
            parser.error(f"--chunks needs dask: {ZARR_EXTRA}")
    if args.workers is not None or args.scheduler is not None:
        try:
            import distributed  # noqa: F401
        except ImportError:
            option = "--workers" if args.workers is not None else "--scheduler"
            parser.error(f"{option} needs dask.distributed: {DISTRIBUTED_EXTRA}")
    return _Engine(args.chunks, args.workers, args.scheduler)


@contextlib.contextmanager
def _running(parser: argparse.ArgumentParser, engine: _Engine):
    """Start the engine (a usage error when the scheduler cannot be reached); close it after."""
    try:
        try:
            engine.start()
        except (OSError, TimeoutError) as err:
            parser.error(f"--scheduler {engine.scheduler}: cannot connect: {_describe(err)}")
        yield engine
    finally:
        engine.close()


@contextlib.contextmanager
def _sigterm_interrupts():
    """During a batch, SIGTERM raises :class:`_Terminated` (once) like Ctrl-C raises
    KeyboardInterrupt, so that both stop the batch cleanly."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def handler(signum, frame):
        if not fired:  # a second SIGTERM must not break the cleanup of the first
            fired.append(signum)
            raise _Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Batch:
    """Runs one step per input, counting outcomes; stops cleanly on SIGINT or SIGTERM."""

    def __init__(self, items: Sequence[Path], desc: str, quiet: bool) -> None:
        self.items = list(items)
        self.desc = desc
        self.quiet = quiet
        self.counts = {"written": 0, "skipped": 0, "failed": 0}
        self.signum: int | None = None
        self.not_done: list[Path] = []

    def run(self, step: Callable[[int], str]) -> None:
        """``step(i)`` returns "written" or "skipped", or raises ``CliError``."""
        current = 0
        bar = _progress(range(len(self.items)), self.desc, self.quiet)
        try:
            for current in bar:
                try:
                    self.counts[step(current)] += 1
                except CliError as err:
                    self.counts["failed"] += 1
                    _error(f"{self.items[current]}: {err}")
            current = len(self.items)
        except KeyboardInterrupt as exc:
            self.signum = int(getattr(exc, "signum", signal.SIGINT))
            self.not_done = self.items[current:]
        finally:
            if hasattr(bar, "close"):
                bar.close()

    @property
    def exit_status(self) -> int:
        if self.signum is not None:
            return 128 + self.signum
        return EXIT_FAILED if self.counts["failed"] else EXIT_OK

    def report_interruption(self) -> None:
        if self.signum is None:
            return
        name = signal.Signals(self.signum).name
        done = len(self.items) - len(self.not_done)
        print(
            f"{PROG}: interrupted by {name}: {done} of {len(self.items)} done; "
            f"not done (rerun with --skip-existing to finish):",
            file=sys.stderr,
        )
        for path in self.not_done:
            print(f"  {path}", file=sys.stderr)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _output_name(path: Path, fmt: str | None = None) -> str:
    """The output name for an input: the same name, or with ``fmt``'s suffix.

    Without ``fmt``: a TIFF keeps its name, ``.npy`` becomes ``.tif``, ``.zarr`` stays.
    """
    suffix = path.suffix.lower()
    if fmt is None:
        fmt = "zarr" if suffix == ".zarr" else "tif"
    if fmt == "tif":
        return path.name if suffix in TIFF_SUFFIXES else path.stem + ".tif"
    return path.stem + ".zarr"


def _progress(items: Sequence, desc: str, quiet: bool):
    """A tqdm progress bar on stderr (or the bare items when quiet or tqdm is missing)."""
    if quiet:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the [io] extra
        return items
    return tqdm(items, desc=desc, unit="file", file=sys.stderr, dynamic_ncols=True)


def _error(message: str) -> None:
    """Print one error line to stderr without breaking a progress bar."""
    line = f"{PROG}: error: {message}"
    try:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stderr)
    except ImportError:  # pragma: no cover
        print(line, file=sys.stderr)


def _check_device(parser: argparse.ArgumentParser, device: str):
    """The ``--device`` value for core (None for auto); a usage error if unavailable."""
    from .core._arrays import resolve_device

    try:
        return str(resolve_device(None if device == "auto" else device))
    except (TypeError, ValueError) as err:
        parser.error(f"--device {device}: {err}")


def _prepare_outdir(parser: argparse.ArgumentParser, outdir: Path) -> None:
    if outdir.exists() and not outdir.is_dir():
        parser.error(f"-o {outdir}: exists and is not a folder")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"-o {outdir}: cannot create the folder: {_describe(err)}")


def _fmt(value: float) -> str:
    """A loss value with enough digits to round-trip float32."""
    return format(value, ".9g")


# --------------------------------------------------------------------------------------
# losslens weights
# --------------------------------------------------------------------------------------


def _cmd_weights(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    outdir = Path(args.outdir)
    device = _check_device(parser, args.device)
    engine = _make_engine(parser, args)
    _prepare_outdir(parser, outdir)
    import numpy as np

    from .core import unet_weight_map

    params = dict(
        w0=args.w0,
        sigma=args.sigma,
        class_weights=args.class_weights,
        spacing=args.spacing,
        background_only=args.background_only,
        separate_touching=args.separate_touching,
    )
    try:  # the parameters are the same for every file: check them once, up front
        unet_weight_map(np.zeros((1, 2), np.uint8), **params, device="cpu")
    except (TypeError, ValueError) as err:
        if "spacing" not in str(err):  # spacing depends on each file's dimensionality
            parser.error(str(err))

    paths = [Path(p) for p in args.labels]
    seen: dict[str, Path] = {}

    def step(i: int) -> str:
        path = paths[i]
        out = outdir / _output_name(path, args.format)
        if out.name in seen:
            raise CliError(f"same output name as {seen[out.name]}: both would write {out}")
        seen[out.name] = path
        if _same_file(out, path):
            raise CliError(f"the output {out} would replace the input")
        if out.exists() and args.skip_existing:
            return "skipped"
        if out.exists() and not args.overwrite:
            raise CliError(f"{out} exists; pass --overwrite to replace it")
        labels = _read(path, args.chunks)
        try:
            w = unet_weight_map(labels, **params, device=device)
            _write_output(out, w, args.overwrite, engine)
        except (TypeError, ValueError) as err:
            raise CliError(_describe(err)) from err
        except OSError as err:
            raise CliError(f"cannot write {out}: {_describe(err)}") from err
        return "written"

    batch = _Batch(paths, "weights", args.quiet)
    start = time.perf_counter()
    with _sigterm_interrupts():
        try:
            with _running(parser, engine):
                batch.run(step)
        except KeyboardInterrupt as exc:  # while the cluster started or stopped
            batch.signum = batch.signum or int(getattr(exc, "signum", signal.SIGINT))
            batch.not_done = batch.not_done or paths
    seconds = time.perf_counter() - start
    settings = ", ".join(f"{k}={v}" for k, v in params.items() if v is not None)
    if engine.chunks is not None:
        settings += f", {engine.describe()}"
    skipped = f", {batch.counts['skipped']} skipped (existing)" if args.skip_existing else ""
    print(
        f"{batch.counts['written']} weight map(s) written to {outdir}{skipped}, "
        f"{batch.counts['failed']} failed, in {seconds:.1f} s ({settings})"
    )
    batch.report_interruption()
    return batch.exit_status


# --------------------------------------------------------------------------------------
# losslens loss
# --------------------------------------------------------------------------------------


def _convert_param(kind: str, text: str) -> Any:
    """A ``--param`` value, from text, for a parameter of the given registry kind."""
    t = text.strip()
    if kind in ("float", "optional_float"):
        if kind == "optional_float" and t.lower() == "none":
            return None
        return float(t)
    if kind == "int":
        v = float(t)
        if v != int(v):
            raise ValueError(f"expected an integer, got {text!r}")
        return int(v)
    if kind == "bool":
        return _parse_bool(t)
    if kind == "class_weights":
        return _parse_class_weights(t)
    if kind == "spacing":
        return _parse_spacing(t)
    if kind == "array":
        if t.lower() == "none":
            return None
        try:
            return _read_array(Path(t))
        except CliError as err:
            raise ValueError(f"{t}: {err}") from None
    # a kind this CLI does not know: the most literal reading
    if t.lower() == "none":
        return None
    for convert in (int, float, _parse_bool):
        try:
            return convert(t)
        except ValueError:
            pass
    return t


def _loss_params(parser: argparse.ArgumentParser, loss: str, items: Sequence[str]):
    """``--param name=value`` items converted by each parameter's kind, then validated."""
    from .core import available_losses

    losses = available_losses()
    if loss not in losses:
        parser.error(f"--loss {loss}: unknown loss; available: {', '.join(losses)}")
    info = losses[loss]
    kinds = {p.name: p.kind for p in info.params}
    params: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            parser.error(f"--param {item}: expected NAME=VALUE")
        if name not in kinds:
            known = ", ".join(kinds) or "none"
            parser.error(
                f"--param {item}: loss {loss!r} has no parameter {name!r}; it takes: {known}"
            )
        try:
            params[name] = _convert_param(kinds[name], value)
        except (ValueError, argparse.ArgumentTypeError) as err:
            parser.error(f"--param {item}: {err}")
    try:
        info.resolve_params(params)
    except (TypeError, ValueError) as err:
        parser.error(f"--param: {err}")
    return params


def _loss_outputs(parser, args, predictions: list[Path]) -> list[Path | None]:
    """Where each pair's loss map goes (None: no map written)."""
    if args.output is None:
        if args.skip_existing:
            parser.error("--skip-existing needs -o: it skips the pairs whose map exists")
        return [None] * len(predictions)
    out = Path(args.output)
    suffix = out.suffix.lower()
    is_file = suffix in OUTPUT_SUFFIXES and (suffix == ".zarr" or not out.is_dir())
    if len(predictions) == 1 and is_file:
        if not out.parent.is_dir():
            parser.error(f"-o {out}: the folder {out.parent} does not exist")
        return [out]
    if is_file:
        parser.error(f"-o {out}: with {len(predictions)} pairs, -o must be a folder")
    if len(predictions) == 1 and not out.exists() and out.suffix:
        parser.error(f"-o {out}: a loss map must end in .tif, .tiff or .zarr")
    _prepare_outdir(parser, out)
    return [out / _output_name(p, args.format) for p in predictions]


def _cmd_loss(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    predictions = [Path(p) for p in args.prediction]
    targets = [Path(p) for p in args.target]
    if len(predictions) != len(targets):
        parser.error(
            f"got {len(predictions)} --prediction file(s) and {len(targets)} --target "
            f"file(s); give one target per prediction"
        )
    masks = [Path(p) for p in args.mask or []]
    if len(masks) not in (0, 1, len(predictions)):
        parser.error(
            f"got {len(masks)} --mask file(s) for {len(predictions)} pair(s); "
            f"give none, one for all pairs, or one per pair"
        )
    if len(masks) == 1:
        masks = masks * len(predictions)
    device = _check_device(parser, args.device)
    engine = _make_engine(parser, args)
    params = _loss_params(parser, args.loss, args.param or [])
    outputs = _loss_outputs(parser, args, predictions)
    csv_path = None if args.csv in (None, "-") else Path(args.csv)
    old_rows: list[dict[str, str]] = []
    columns = ["prediction", "target", "loss", "value"]
    if args.output is not None:
        columns.append("map")
    if csv_path is not None and csv_path.exists():
        if args.skip_existing:  # finishing a batch: the new rows join the old ones
            old_rows = _read_csv_rows(parser, csv_path, columns)
        elif not args.overwrite:
            parser.error(f"--csv {csv_path}: exists; pass --overwrite to replace it")
    from .core import loss_map, loss_value

    rows: list[dict[str, str]] = []
    seen: dict[Path, Path] = {}

    def step(i: int) -> str:
        pred_path, target_path, out = predictions[i], targets[i], outputs[i]
        if out is not None:
            if out in seen:
                raise CliError(f"same map name as {seen[out]}: both would write {out}")
            seen[out] = pred_path
            for p in (pred_path, target_path, *masks[i : i + 1]):
                if _same_file(out, p):
                    raise CliError(f"the map {out} would replace the input {p}")
            if out.exists() and args.skip_existing:
                return "skipped"
            if out.exists() and not args.overwrite:
                raise CliError(f"{out} exists; pass --overwrite to replace it")
        arrays = {}
        for role, path in (("prediction", pred_path), ("target", target_path)) + (
            (("mask", masks[i]),) if masks else ()
        ):
            try:
                arrays[role] = _read(path, args.chunks)
            except CliError as err:
                raise CliError(f"{role} {path}: {err}") from None
        if "mask" in arrays:
            arrays["mask"] = arrays["mask"] != 0
        kwargs = dict(
            from_logits=args.from_logits, mask=arrays.get("mask"), device=device, **params
        )
        try:
            value = loss_value(arrays["prediction"], arrays["target"], args.loss, **kwargs)
            if out is not None:
                lmap = loss_map(arrays["prediction"], arrays["target"], args.loss, **kwargs)
                _write_output(out, lmap, args.overwrite, engine)
        except (TypeError, ValueError) as err:
            raise CliError(_describe(err)) from err
        except OSError as err:
            raise CliError(f"cannot write {out}: {_describe(err)}") from err
        rows.append(
            {
                "prediction": str(pred_path),
                "target": str(target_path),
                "loss": args.loss,
                "value": _fmt(value),
                "map": "" if out is None else str(out),
            }
        )
        return "written"

    batch = _Batch(predictions, "loss", args.quiet or len(predictions) == 1)
    with _sigterm_interrupts():
        try:
            with _running(parser, engine):
                batch.run(step)
        except KeyboardInterrupt as exc:  # while the cluster started or stopped
            batch.signum = batch.signum or int(getattr(exc, "signum", signal.SIGINT))
            batch.not_done = batch.not_done or predictions
        failed = batch.counts["failed"]
        # the rows done so far are reported even after an interruption
        if args.csv is not None:
            new_maps = {r["map"] for r in rows}
            merged = [r for r in old_rows if not r.get("map") or r["map"] not in new_maps]
            text = _csv_text(merged + rows, columns)
            if csv_path is None:
                sys.stdout.write(text)
            else:
                try:
                    _atomic_write(
                        csv_path,
                        lambda tmp: tmp.write_text(text, encoding="utf-8"),
                        args.overwrite or args.skip_existing,
                    )
                except (CliError, OSError) as err:
                    failed += 1
                    _error(f"--csv {csv_path}: {_describe(err)}")
        elif len(predictions) == 1:
            if rows:
                print(rows[0]["value"])
        elif rows:
            _print_table(rows, columns, sys.stdout)
    if len(predictions) > 1 or failed or batch.counts["skipped"]:
        skipped = f", {batch.counts['skipped']} skipped (existing)" if args.skip_existing else ""
        print(
            f"{len(rows)} pair(s) scored with {args.loss!r}{skipped}, {failed} failed",
            file=sys.stderr,
        )
    batch.report_interruption()
    if batch.signum is not None:
        return batch.exit_status
    return EXIT_FAILED if failed else EXIT_OK


def _read_csv_rows(parser, path: Path, columns: list[str]) -> list[dict[str, str]]:
    """The rows of an existing ``--csv`` file, to be kept by ``--skip-existing``."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            found = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        parser.error(f"--csv {path}: cannot read it: {_describe(err)}")
    if list(found) != columns:
        parser.error(
            f"--csv {path}: its columns {','.join(found)} are not {','.join(columns)}; "
            f"give another file, or --overwrite"
        )
    return rows


def _csv_text(rows: Iterable[dict[str, str]], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _print_table(rows: list[dict[str, str]], columns: list[str], file: TextIO) -> None:
    widths = {c: max([len(c), *(len(r[c]) for r in rows)]) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns).rstrip(), file=file)
    for r in rows:
        cells = [r[c].rjust(widths[c]) if c == "value" else r[c].ljust(widths[c]) for c in columns]
        print("  ".join(cells).rstrip(), file=file)


def _losses_epilog() -> str:
    """The registered losses and their parameters, for ``losslens loss --help``."""
    from .core import available_losses

    lines = ["losses (--loss NAME) and their parameters (--param NAME=VALUE, default):"]
    for name, info in available_losses().items():
        lines.append(f"  {name}: {info.title} ({info.kind})")
        for p in info.params:
            lines.append(f"      {p.name}={p.default!r}  {p.description}")
    lines += [
        "",
        "A pixel-wise loss's map is the per-pixel loss (its mean is the printed value); a",
        "region loss's map is the signed gradient dL/dp.",
        "",
        "examples:",
        "  losslens loss --prediction pred.tif --target labels.tif --loss bce -o bce.tif",
        "  losslens loss --prediction p1.tif p2.tif --target t1.tif t2.tif --loss dice \\",
        "      --param smooth=1 --csv scores.csv",
        "  losslens loss --prediction logits.npy --target labels.tif --from-logits \\",
        "      --loss unet_ce --param weight_map=weights/labels.tif",
    ]
    return "\n".join(lines)


class _LossHelpAction(argparse.Action):
    """``-h`` for ``losslens loss``: lists the losses, importing torch only when asked."""

    def __init__(
        self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None
    ):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.epilog = _losses_epilog()
        parser.print_help()
        parser.exit()


# --------------------------------------------------------------------------------------
# losslens demo
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _display_for_screenshot():
    """A display to render on: the current one, or a private Xvfb started for the run."""
    if sys.platform != "linux" or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        yield
        return
    import shutil
    import subprocess

    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise CliError(
            "no display to render on and no Xvfb found: install xvfb "
            "(apt-get install xvfb) or run under xvfb-run"
        )
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1400x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as fh:
            number = fh.readline().strip()
        if not number:
            raise CliError("Xvfb did not start")
        os.environ["DISPLAY"] = f":{number}"
        yield
    finally:
        os.environ.pop("DISPLAY", None)
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _wait_for_compute(widget, started, timeout: float = 120.0) -> None:
    """Process Qt events until the widget's computation is finished (or ``timeout``)."""
    from qtpy.QtCore import QCoreApplication

    worker = started if hasattr(started, "finished") else None
    for name in ("worker", "_worker"):
        if worker is None:
            worker = getattr(widget, name, None)
    deadline = time.perf_counter() + timeout
    app = QCoreApplication.instance()
    while time.perf_counter() < deadline:
        app.processEvents()
        busy = worker is not None and getattr(worker, "is_running", False)
        busy = busy or bool(getattr(widget, "busy", False))
        if not busy:
            break
        time.sleep(0.02)
    for _ in range(20):  # let the layers and the dock settle before a screenshot
        app.processEvents()
        time.sleep(0.01)


def _cmd_demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    shot = Path(args.screenshot) if args.screenshot else None
    if shot is not None:
        if shot.suffix.lower() not in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
            parser.error(f"--screenshot {shot}: use a .png (or .jpg, .tif, .bmp) file name")
        if not shot.parent.is_dir():
            parser.error(f"--screenshot {shot}: the folder {shot.parent} does not exist")
        if shot.exists() and not args.overwrite:
            parser.error(f"--screenshot {shot}: exists; pass --overwrite to replace it")
    try:
        with _display_for_screenshot() if shot is not None else contextlib.nullcontext():
            return _run_demo(shot, args)
    except CliError as err:
        _error(f"demo: {err}")
        return EXIT_FAILED


def _run_demo(shot: Path | None, args: argparse.Namespace) -> int:
    try:
        import napari
    except ImportError as err:
        raise CliError(
            f"the demo needs napari: pip install 'napari-losslens[napari]' ({err})"
        ) from None

    viewer = napari.Viewer(title="Loss Lens demo", show=True)
    try:
        viewer.window.resize(args.width, args.height)
        viewer.open_sample("napari-losslens", "touching_nuclei")
        _, widget = viewer.window.add_plugin_dock_widget("napari-losslens", "Loss Lens")
        started = widget.compute()  # synchronous; a background worker is waited for too
        if started is None and getattr(widget, "last_message", ""):
            raise CliError(f"the Loss Lens widget could not compute: {widget.last_message}")
        _wait_for_compute(widget, started)
        if shot is None:
            napari.run()
            return EXIT_OK

        def write(tmp: Path) -> None:
            viewer.screenshot(str(tmp), canvas_only=False, flash=False)

        _atomic_write(shot, write, args.overwrite)
        print(f"screenshot written to {shot}")
        return EXIT_OK
    finally:
        if shot is not None:
            viewer.close()


# --------------------------------------------------------------------------------------
# The parser
# --------------------------------------------------------------------------------------


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


WEIGHTS_EPILOG = """\
The weight map (Ronneberger et al. 2015, eq. 2) is
    w(x) = wc(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))
with d1, d2 the distances to the nearest and second-nearest cell, in --spacing units.
Each output is a float32 TIFF with the input's name (.npy becomes .tif) in OUTDIR, or a
.zarr folder (.zarr inputs, or --format zarr).

examples:
  losslens weights train/labels/*.tif -o train/weights
  losslens weights stack.tif --spacing 2,0.5,0.5 --sigma 3 --class-weights balanced -o w/
  losslens weights volume.tif --chunks 32,512,512 --workers 4 --format zarr -o w/
  losslens weights volume.tif --chunks 32,512,512 --workers 4 --format zarr -o w/ --skip-existing
"""

MAIN_DESCRIPTION = """\
See what a segmentation loss does: U-Net weight maps and per-pixel loss maps for files,
and the napari widget on a sample.

exit status: 0 all done; 1 a file failed or an output was refused; 2 a usage error.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``losslens`` argument parser (importing nothing heavy)."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG, description=MAIN_DESCRIPTION, formatter_class=_Formatter
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
        help="print the version and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # weights
    w = sub.add_parser(
        "weights",
        help="U-Net weight maps for label images",
        description="Write the U-Net weight map of each label image (TIFF/.npy/.zarr) to OUTDIR.",
        epilog=WEIGHTS_EPILOG,
        formatter_class=_Formatter,
    )
    w.add_argument(
        "labels",
        nargs="+",
        metavar="LABELS",
        help="label images: .tif/.tiff, .npy or .zarr, 2D or 3D, 0 = background",
    )
    w.add_argument(
        "-o",
        "--outdir",
        required=True,
        metavar="OUTDIR",
        help="folder for the weight maps, created if missing (required)",
    )
    w.add_argument(
        "--w0",
        type=_finite_float,
        default=10.0,
        help="weight of the border term, >= 0 (default: %(default)s)",
    )
    w.add_argument(
        "--sigma",
        type=_finite_float,
        default=5.0,
        help="width of the border term in --spacing units, > 0 (default: %(default)s)",
    )
    w.add_argument(
        "--class-weights",
        type=_parse_class_weights,
        default=None,
        metavar="{none,balanced,BG,FG}",
        help="class term wc: none (1 everywhere), balanced (each class the same "
        "total weight) or two numbers 'BG,FG' (default: none)",
    )
    w.add_argument(
        "--spacing",
        type=_parse_spacing,
        default=None,
        metavar="S[,S...]",
        help="pixel size, one number or one per axis, e.g. 2,0.5,0.5 for ZYX "
        "(default: 1 per axis)",
    )
    w.add_argument(
        "--separate-touching",
        action="store_true",
        help="first open a one-pixel background gap between touching cells (default: off)",
    )
    where = w.add_mutually_exclusive_group()
    where.add_argument(
        "--background-only",
        dest="background_only",
        action="store_true",
        default=True,
        help="add the border term on background pixels only (default)",
    )
    where.add_argument(
        "--everywhere",
        dest="background_only",
        action="store_false",
        help="add the border term on every pixel, cells included (default: off)",
    )
    _add_common(w)
    w.set_defaults(run=_cmd_weights, subparser=w)

    # loss
    lo = sub.add_parser(
        "loss",
        help="loss values and loss maps for prediction/target pairs",
        description=(
            "Score predictions against targets: print the loss (one pair) or a table (several\n"
            "pairs), and write the loss maps with -o. Pairs are matched in order."
        ),
        formatter_class=_Formatter,
        add_help=False,
    )
    lo.add_argument(
        "-h",
        "--help",
        action=_LossHelpAction,
        help="show this help, with the losses and their parameters, and exit",
    )
    lo.add_argument(
        "--prediction",
        action="extend",
        nargs="+",
        required=True,
        metavar="P",
        help="prediction files (.tif/.npy/.zarr): probabilities in [0, 1], or logits "
        "with --from-logits; repeat the option or list several (required)",
    )
    lo.add_argument(
        "--target",
        action="extend",
        nargs="+",
        required=True,
        metavar="T",
        help="target files: binary masks or instance labels, one per prediction (required)",
    )
    lo.add_argument(
        "--loss",
        default="bce",
        metavar="NAME",
        help="the loss, see the list below (default: %(default)s)",
    )
    lo.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="a loss parameter, repeatable, e.g. --param beta=2; an array "
        "parameter takes a file name (default: the loss's defaults)",
    )
    lo.add_argument(
        "--from-logits",
        action="store_true",
        help="the predictions hold logits, not probabilities (default: off)",
    )
    lo.add_argument(
        "--mask",
        action="extend",
        nargs="+",
        metavar="M",
        help="files of the pixels that count (non-zero = counted): one for all "
        "pairs or one per pair (default: every pixel counts)",
    )
    lo.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="where to write the loss maps (float32 TIFF or zarr): a .tif or .zarr file for one "
        "pair, a folder for several (named after the predictions) "
        "(default: no maps written)",
    )
    lo.add_argument(
        "--csv",
        nargs="?",
        const="-",
        metavar="FILE",
        help="write the table as CSV to FILE, or to stdout when FILE is "
        "omitted (default: a plain table, or the bare value for one pair)",
    )
    _add_common(lo)
    lo.set_defaults(run=_cmd_loss, subparser=lo)

    # demo
    d = sub.add_parser(
        "demo",
        help="open napari with the sample and the Loss Lens widget",
        description=(
            "Open napari with the touching_nuclei sample and the Loss Lens widget docked and\n"
            "computed. With --screenshot, render that window to a file (headless: a private\n"
            "Xvfb is started when there is no display) and exit."
        ),
        formatter_class=_Formatter,
    )
    d.add_argument(
        "--screenshot",
        metavar="FILE.png",
        help="write a screenshot of the window to FILE.png and exit instead of "
        "opening the window (default: open the window)",
    )
    d.add_argument(
        "--width", type=int, default=1400, help="window width in pixels (default: %(default)s)"
    )
    d.add_argument(
        "--height", type=int, default=900, help="window height in pixels (default: %(default)s)"
    )
    d.add_argument(
        "--overwrite", action="store_true", help="replace an existing screenshot (default: off)"
    )
    d.set_defaults(run=_cmd_demo, subparser=d)
    return parser


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format",
        choices=("tif", "zarr"),
        default=None,
        help="format of the outputs written into a folder: float32 TIFF or a .zarr "
        "folder (default: zarr for .zarr inputs, else tif)",
    )
    p.add_argument(
        "--device",
        default="auto",
        metavar="{auto,cpu,cuda,cuda:N}",
        help="where to compute: auto = CUDA when available, else CPU (default: %(default)s)",
    )
    existing = p.add_mutually_exclusive_group()
    existing.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files (default: off, existing files are "
        "refused and count as failures)",
    )
    existing.add_argument(
        "--skip-existing",
        action="store_true",
        help="leave existing outputs alone and do the rest, e.g. to finish an "
        "interrupted batch (default: off)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")
    big = p.add_argument_group(
        "large data",
        "With --chunks, each file is read lazily (memory-mapped TIFF/.npy, or zarr) as a dask\n"
        "array and its result written chunk by chunk, equal to the in-memory result.",
    )
    big.add_argument(
        "--chunks",
        type=_parse_chunks,
        default=None,
        metavar="N[,N...]",
        help="process each file in chunks of N pixels per axis, or one size per axis "
        "(e.g. 64,512,512) (default: whole files in memory)",
    )
    big.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="compute the chunks on a local dask.distributed cluster of N processes, "
        "started for the run (needs --chunks and the [distributed] extra) "
        "(default: dask's threads)",
    )
    big.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="compute the chunks on a running dask.distributed scheduler, e.g. "
        "tcp://10.0.0.5:8786; its workers must see the files at the same paths "
        "(default: dask's threads)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``losslens`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.run(args, args.subparser)
    except SystemExit as exc:  # argparse's --help, --version and usage errors
        code = exc.code
        if code is None:
            return EXIT_OK
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
