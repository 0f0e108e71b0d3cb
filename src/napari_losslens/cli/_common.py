"""What every ``losslens`` command shares: the error type, exit codes, messages, help layout.

Nothing here imports numpy, torch or a file library: ``losslens --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

__all__ = [
    "DISTRIBUTED_EXTRA",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "ZARR_EXTRA",
    "CliError",
    "Formatter",
    "describe",
    "error",
    "fmt",
]

PROG = "losslens"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

ZARR_EXTRA = "pip install 'napari-losslens[zarr]'"
DISTRIBUTED_EXTRA = "pip install 'napari-losslens[distributed]'"


class CliError(Exception):
    """A problem with one file: reported as one line, the other files go on."""


class Formatter(argparse.RawDescriptionHelpFormatter):
    """The help layout of every command: options in a column, descriptions kept as written."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def describe(err: BaseException) -> str:
    """One line for an exception: its message, with its type when the message is bare."""
    msg = " ".join(str(err).split())
    if not msg or isinstance(err, (KeyError, IndexError, AttributeError)):
        return f"{type(err).__name__}: {msg}" if msg else type(err).__name__
    return msg


def error(message: str) -> None:
    """Print one error line to stderr without breaking a progress bar."""
    line = f"{PROG}: error: {message}"
    try:
        from tqdm import tqdm  # optional ([io] extra): only its write() is wanted here
    except ImportError:  # pragma: no cover
        print(line, file=sys.stderr)
    else:
        tqdm.write(line, file=sys.stderr)


def fmt(value: float) -> str:
    """A loss value with enough digits to round-trip float32."""
    return format(value, ".9g")
