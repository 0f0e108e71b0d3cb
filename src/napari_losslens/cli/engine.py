"""Where dask computes during a run: ``--chunks``, ``--workers``, ``--scheduler``.

Without ``--chunks`` nothing is set up and the inputs are read into memory. With it, the
chunks are computed on dask's threads, on a local ``dask.distributed`` cluster started for
the run (``--workers N``), or on a running scheduler (``--scheduler ADDRESS``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os

from ._common import DISTRIBUTED_EXTRA, PROG, ZARR_EXTRA, describe
from .options import parse_chunks

__all__ = ["Engine", "add_engine_options", "make_engine", "running"]


class Engine:
    """Where dask computes during a run: threads (default), a local cluster, or a scheduler.

    ``quiesce()`` stops the computation in flight (after an interruption) so that no task
    writes any more; ``close()`` shuts everything down.
    """

    def __init__(self, chunks, workers: int | None, scheduler: str | None) -> None:
        self.chunks = chunks
        self.workers = workers
        self.scheduler = scheduler
        self._stack = contextlib.ExitStack()
        self._pool = None
        self._cluster = None
        self._client = None

    def start(self) -> None:
        if self.chunks is None:
            return
        import dask  # optional dependency ([zarr] extra), checked by make_engine

        if self.workers is None and self.scheduler is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix=PROG)
            self._stack.enter_context(dask.config.set(scheduler="threads", pool=self._pool))
            return
        # optional dependency ([distributed] extra), checked by make_engine
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
        """For the summary line: the chunks and where they were computed."""
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


def make_engine(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Engine:
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
            import dask.array  # noqa: F401  (only checking that the optional dask is there)
        except ImportError:
            parser.error(f"--chunks needs dask: {ZARR_EXTRA}")
    if args.workers is not None or args.scheduler is not None:
        try:
            import distributed  # noqa: F401  (only checking that it is there)
        except ImportError:
            option = "--workers" if args.workers is not None else "--scheduler"
            parser.error(f"{option} needs dask.distributed: {DISTRIBUTED_EXTRA}")
    return Engine(args.chunks, args.workers, args.scheduler)


@contextlib.contextmanager
def running(parser: argparse.ArgumentParser, engine: Engine):
    """Start the engine (a usage error when the scheduler cannot be reached); close it after."""
    try:
        try:
            engine.start()
        except (OSError, TimeoutError) as err:
            parser.error(f"--scheduler {engine.scheduler}: cannot connect: {describe(err)}")
        yield engine
    finally:
        engine.close()


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """``--chunks``, ``--workers`` and ``--scheduler``, in a "large data" group."""
    big = p.add_argument_group(
        "large data",
        "With --chunks, each file is read lazily as a dask array (a TIFF strip by strip or\n"
        "tile by tile, a .npy memory-mapped, a zarr chunk by chunk) and its result written\n"
        "chunk by chunk, equal to the in-memory result.",
    )
    big.add_argument(
        "--chunks",
        type=parse_chunks,
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
