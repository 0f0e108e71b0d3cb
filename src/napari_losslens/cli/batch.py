"""The batch runner: one step per file, atomic outputs, skip-existing, signals, progress.

- Before the first write, every output is checked against every input of the run and
  against the other outputs (:func:`prepare_outputs`, the rules in :mod:`.outputs`); a
  conflict refuses the whole run. Temporary files a killed run left are removed.
- A bad file does not stop the others: a step raises :class:`CliError` (or anything else),
  which is reported as one line naming the file, and the batch goes on.
- No result holding NaN or inf is written (:func:`write_output`).
- Outputs are written to a hidden temporary file (or folder, for ``.zarr``) in the target's
  folder and renamed into place when complete, so no partial output is ever left under the
  final name.
- SIGINT or SIGTERM stops the batch cleanly: the output in progress is removed, the
  finished ones are kept, the files not done are listed, and the exit status is 130 or 143.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from . import _io
from ._common import EXIT_FAILED, EXIT_OK, PROG, CliError, describe, error, message
from .engine import Engine
from .options import speak_options
from .outputs import Output, clean_stale_temps, conflicts, temp_name

__all__ = [
    "Batch",
    "add_batch_options",
    "atomic_write",
    "atomic_write_dir",
    "check_device",
    "output_name",
    "prepare_outdir",
    "prepare_outputs",
    "sigterm_interrupts",
    "write_output",
]

# Test-only hook: seconds to sleep after an output is written to its temporary file and
# before it is renamed into place, so that the tests can interrupt a batch mid-file.
# Not an option for users; it does nothing when unset.
_TEST_DELAY_ENV = "LOSSLENS_TEST_DELAY"


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that dask and the batch loop stop the same way."""

    signum = signal.SIGTERM


# --------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------


def _test_delay() -> None:
    """Test-only: sleep ``$LOSSLENS_TEST_DELAY`` seconds (see ``_TEST_DELAY_ENV``)."""
    delay = os.environ.get(_TEST_DELAY_ENV)
    if delay:
        time.sleep(float(delay))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _refuse_existing(path: Path) -> CliError:
    return CliError(f"{path} exists; pass --overwrite to replace it")


def atomic_write(path: Path, write: Callable[[Path], None], overwrite: bool) -> None:
    """Write ``path`` through ``write(tmp)`` on a temporary file next to it, then rename.

    The temporary file keeps the target's suffix (some writers choose the format by it) and
    is removed when anything fails, so no partial output is ever left behind.
    """
    if path.exists() and not overwrite:
        raise _refuse_existing(path)
    tmp = temp_name(path)
    try:
        write(tmp)
        _test_delay()
        if not overwrite and path.exists():
            raise _refuse_existing(path)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _write_in_thread(write: Callable[[Path], None], tmp: Path, quiesce: Callable[[], None]):
    """``write(tmp)`` in a thread that an interruption of the main thread waits for.

    zarr writes through its own event-loop thread: interrupting the main thread while it
    waits for zarr would leave that write running, and it would recreate the temporary
    folder after its removal. So the write runs in a thread of its own; on an interruption
    the computation is stopped (``quiesce``) and the thread, with every write it started,
    is waited for before the interruption goes on. The wait polls a flag with
    ``time.sleep``: ``Thread.join`` interrupted by a signal can report a running thread
    as finished.
    """
    failure: list[BaseException] = []
    done = threading.Event()

    def target() -> None:
        try:
            write(tmp)
        except BaseException as err:  # handed to the main thread below
            failure.append(err)
        finally:
            done.set()

    thread = threading.Thread(target=target, name=f"{PROG}-write", daemon=True)
    try:
        thread.start()  # inside: an interrupted start() may still have started the write
        while not done.is_set():
            time.sleep(0.02)
    except KeyboardInterrupt:
        quiesce()
        deadline = time.monotonic() + 60.0
        while not done.is_set() and time.monotonic() < deadline:
            time.sleep(0.02)
        raise
    if failure:
        raise failure[0]


def atomic_write_dir(
    path: Path, write: Callable[[Path], None], overwrite: bool, quiesce: Callable[[], None]
) -> None:
    """:func:`atomic_write` for an output folder (zarr): a temporary folder, then renamed.

    A replaced output is first moved aside and deleted once the new one is in place. When
    the write is interrupted, ``quiesce()`` first stops the tasks that may still be writing
    chunks, and the writes in flight are waited for, so that none lands in the temporary
    folder after it is removed.
    """
    if path.exists() and not overwrite:
        raise _refuse_existing(path)
    tmp = temp_name(path)
    try:
        _write_in_thread(write, tmp, quiesce)
        _test_delay()
        if path.exists() or path.is_symlink():
            if not overwrite:
                raise _refuse_existing(path)
            old = temp_name(path, "old")
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
    finally:
        _remove(tmp)


NOT_FINITE = "the result holds NaN or inf values: not written"


def _finite_block(block: np.ndarray) -> np.ndarray:
    """A block of a result, checked as it is computed (a ``map_blocks`` function)."""
    if not np.isfinite(block).all():
        raise CliError(NOT_FINITE)
    return block


def write_output(path: Path, array, overwrite: bool, engine: Engine) -> None:
    """A result, as float32, to ``path`` atomically: ``.zarr`` or TIFF (tiled when chunked).

    A result holding NaN or inf is never written: ``CliError``, and no file is left (a
    chunked result is checked chunk by chunk as it is written).
    """
    if _io.is_dask(array):
        result = array.astype(np.float32).map_blocks(_finite_block, dtype=np.float32)
    else:
        result = np.asarray(array, dtype=np.float32)
        if not np.isfinite(result).all():
            raise CliError(NOT_FINITE)
    if path.suffix.lower() == ".zarr":
        atomic_write_dir(path, lambda tmp: _io.write_zarr(tmp, result), overwrite, engine.quiesce)
    elif _io.is_dask(result):
        atomic_write(path, lambda tmp: _io.write_tiff_tiled(tmp, result), overwrite)
    else:
        atomic_write(path, lambda tmp: _io.write_tiff(tmp, result), overwrite)


def prepare_outputs(inputs: Sequence[Path], outputs: Sequence[Output]) -> bool:
    """Check every output against every input and the other outputs (see :mod:`.outputs`).

    Each conflict is reported on stderr and the run must stop (False) before its first
    write. Otherwise the temporary files a killed run left in the output folders are
    removed, and the run may start (True).
    """
    problems = conflicts(inputs, outputs)
    for problem in problems:
        error(problem)
    if problems:
        error(f"nothing written: {len(problems)} output(s) refused")
        return False
    for folder in dict.fromkeys(out.path.parent for out in outputs):
        removed = clean_stale_temps(folder)
        if removed:
            print(
                f"{PROG}: removed {len(removed)} temporary file(s) left in {folder} by an "
                f"interrupted run",
                file=sys.stderr,
            )
    return True


# --------------------------------------------------------------------------------------
# Signals, progress and the loop over files
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def sigterm_interrupts():
    """During a batch, SIGTERM raises ``_Terminated`` (once) like Ctrl-C raises
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


def _progress(items: Sequence, desc: str, quiet: bool):
    """A tqdm progress bar on stderr (or the bare items when quiet or tqdm is missing)."""
    if quiet:
        return items
    try:
        from tqdm import tqdm  # optional ([io] extra): no bar without it
    except ImportError:  # pragma: no cover - tqdm is in the [io] extra
        return items
    return tqdm(items, desc=desc, unit="file", file=sys.stderr, dynamic_ncols=True)


class _AboveTheBar(logging.Handler):
    """A logging handler that writes each record as one line above the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            message(f"{PROG}: warning: {record.name}: {' '.join(record.getMessage().split())}")


@contextlib.contextmanager
def _messages_above_the_bar():
    """During a batch, warnings and tifffile's log messages go above the progress bar
    (``tqdm.write``), one line each, instead of into it."""
    logger = logging.getLogger("tifffile")
    handler = _AboveTheBar(logging.WARNING)
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False

    def show(msg, category, filename, lineno, file=None, line=None):
        message(f"{PROG}: warning: {category.__name__}: {' '.join(str(msg).split())}")

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


class Batch:
    """Runs one step per input, counting outcomes; stops cleanly on SIGINT or SIGTERM."""

    def __init__(self, items: Sequence[Path], desc: str, quiet: bool) -> None:
        self.items = list(items)
        self.desc = desc
        self.quiet = quiet
        self.counts = {"written": 0, "skipped": 0, "failed": 0}
        self.signum: int | None = None
        self.not_done: list[Path] = []

    def run(self, step: Callable[[int], str]) -> None:
        """``step(i)`` returns "written" or "skipped", or raises.

        Any exception but an interruption fails that file only: ``CliError`` is reported
        with its message, any other with its type too (it came from deep inside, and says
        so). Warnings and tifffile's log messages are written above the progress bar.
        """
        current = 0
        bar = _progress(range(len(self.items)), self.desc, self.quiet)
        try:
            with _messages_above_the_bar():
                for current in bar:
                    try:
                        self.counts[step(current)] += 1
                    except CliError as err:
                        self.counts["failed"] += 1
                        error(f"{self.items[current]}: {err}")
                    except Exception as err:  # one bad file never stops the batch
                        self.counts["failed"] += 1
                        error(f"{self.items[current]}: {type(err).__name__}: {describe(err)}")
            current = len(self.items)
        except KeyboardInterrupt as exc:
            self.signum = int(getattr(exc, "signum", signal.SIGINT))
            self.not_done = self.items[current:]
        finally:
            if hasattr(bar, "close"):
                bar.close()

    def run_within(self, context: contextlib.AbstractContextManager, step) -> None:
        """:meth:`run` inside ``context`` (the started dask engine, say).

        Ctrl-C (or SIGTERM, under :func:`sigterm_interrupts`) while ``context`` starts or
        stops is recorded like one during the run: what was not done is reported, nothing
        is raised.
        """
        try:
            with context:
                self.run(step)
        except KeyboardInterrupt as exc:  # while the context started or stopped
            self.signum = self.signum or int(getattr(exc, "signum", signal.SIGINT))
            self.not_done = self.not_done or list(self.items)

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


# --------------------------------------------------------------------------------------
# Outputs and the options every batch command shares
# --------------------------------------------------------------------------------------


def output_name(path: Path, fmt: str | None = None) -> str:
    """The output name for an input: the same name, or with ``fmt``'s suffix.

    Without ``fmt``: a TIFF keeps its name, ``.npy`` becomes ``.tif``, ``.zarr`` stays.
    """
    suffix = path.suffix.lower()
    if fmt is None:
        fmt = "zarr" if suffix == ".zarr" else "tif"
    if fmt == "tif":
        return path.name if suffix in _io.TIFF_SUFFIXES else path.stem + ".tif"
    return path.stem + ".zarr"


def prepare_outdir(parser: argparse.ArgumentParser, outdir: Path) -> None:
    """Create the output folder (a usage error when it cannot be)."""
    if outdir.exists() and not outdir.is_dir():
        parser.error(f"-o {outdir}: exists and is not a folder")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"-o {outdir}: cannot create the folder: {describe(err)}")


def check_device(parser: argparse.ArgumentParser, device: str) -> str:
    """The ``--device`` value for core; a usage error if unavailable."""
    # torch is imported when a command runs, not for --help
    from ..core._arrays import resolve_device

    try:
        return str(resolve_device(None if device == "auto" else device))
    except (TypeError, ValueError) as err:
        parser.error(f"--device {device}: {speak_options(str(err), {'device': '--device'})}")


def add_batch_options(p: argparse.ArgumentParser) -> None:
    """The options of every batch command: output format, device, existing outputs, quiet."""
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
