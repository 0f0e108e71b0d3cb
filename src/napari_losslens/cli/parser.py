"""The ``losslens`` parser and ``main``: one subcommand per module, each adds its own parser."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from . import compare, demo, loss, train_demo, weights
from ._common import EXIT_FAILED, EXIT_OK, PROG, Formatter

__all__ = ["build_parser", "main"]

MAIN_DESCRIPTION = """\
See what a segmentation loss does: U-Net weight maps and per-pixel loss maps for files,
and the napari widget on a sample.

exit status: 0 all done; 1 a file failed or an output was refused; 2 a usage error.
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``losslens`` argument parser (importing nothing heavy)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=MAIN_DESCRIPTION, formatter_class=Formatter
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
        help="print the version and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (weights, loss, compare, demo, train_demo):
        command.add_parser(sub)
    return parser


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
