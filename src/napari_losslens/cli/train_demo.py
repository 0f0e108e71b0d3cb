"""``losslens train-demo``: train a small U-Net and record where its loss goes.

``add_parser(subparsers)`` adds ``train-demo`` (and sets ``run`` and ``subparser`` as the
other subcommands do); ``run(args, parser)`` calls
:func:`napari_losslens.training.demo.train_demo` and returns the exit status.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import EXIT_FAILED, EXIT_OK, PROG, Formatter

__all__ = ["add_parser", "run"]


def add_parser(sub) -> argparse.ArgumentParser:
    """Add ``train-demo`` to the subcommands ``sub``; return its parser."""
    p = sub.add_parser(
        "train-demo",
        help="train a small U-Net on synthetic nuclei and record its loss maps",
        description=(
            "Train a small U-Net (pure PyTorch) on synthetic touching nuclei, validate on the\n"
            "2018 Data Science Bowl image when the dsb extra is installed (synthetic nuclei\n"
            "otherwise), and record the validation loss maps, per step, into\n"
            "OUT/<loss>.losslens.zarr, to open in napari. Several --loss: one recording each."
        ),
        formatter_class=Formatter,
    )
    p.add_argument(
        "--steps", type=int, default=150, help="training steps per loss (default: %(default)s)"
    )
    p.add_argument(
        "--loss",
        dest="losses",
        action="append",
        metavar="NAME",
        help="a loss to train with; repeat for several (default: unet_ce)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("."), help="folder of the recordings (default: .)"
    )
    p.add_argument(
        "--every",
        type=int,
        default=10,
        help="record the validation every N steps (default: %(default)s)",
    )
    p.add_argument(
        "--validation",
        choices=("auto", "dsb", "synthetic"),
        default="auto",
        help="the validation image (default: %(default)s: dsb when installed)",
    )
    p.add_argument("--seed", type=int, default=0, help="weights and crops seed (default: 0)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace existing recordings (default: off)"
    )
    p.set_defaults(run=run, subparser=p)
    return p


def run(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """Run ``train-demo`` with parsed ``args``; return the exit status (errors: 1)."""
    # torch is imported when a command runs, not for --help
    from ..training import demo

    try:
        demo.train_demo(
            steps=args.steps,
            losses=tuple(args.losses or ("unet_ce",)),
            out=args.out,
            every=args.every,
            validation=args.validation,
            seed=args.seed,
            overwrite=args.overwrite,
        )
    except (ValueError, ModuleNotFoundError) as exc:
        print(f"{PROG} train-demo: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
