"""``losslens weights``: the U-Net weight map of each label image, written to a folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from . import _io, batch
from ._common import EXIT_FAILED, CliError, Formatter, describe
from .engine import add_engine_options, make_engine, running
from .options import (
    CLASS_WEIGHTS_FORMS,
    finite_float,
    parse_class_weights,
    parse_spacing,
    speak_options,
)
from .outputs import Output

__all__ = ["add_parser", "run"]

# core's keyword names, as this command's options (for error messages)
OPTIONS = {
    "w0": "--w0",
    "sigma": "--sigma",
    "class_weights": "--class-weights",
    "spacing": "--spacing",
    "background_only": "--background-only",
    "separate_touching": "--separate-touching",
    "device": "--device",
}

EPILOG = """\
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


def add_parser(sub) -> argparse.ArgumentParser:
    """Add ``weights`` to the subcommands ``sub``; return its parser."""
    w = sub.add_parser(
        "weights",
        help="U-Net weight maps for label images",
        description="Write the U-Net weight map of each label image (TIFF/.npy/.zarr) to OUTDIR.",
        epilog=EPILOG,
        formatter_class=Formatter,
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
        type=finite_float,
        default=10.0,
        help="weight of the border term, >= 0 (default: %(default)s)",
    )
    w.add_argument(
        "--sigma",
        type=finite_float,
        default=5.0,
        help="width of the border term in --spacing units, > 0 (default: %(default)s)",
    )
    w.add_argument(
        "--class-weights",
        type=parse_class_weights,
        default=None,
        metavar="{none,balanced,BG,FG}",
        help=f"class term wc, one of {CLASS_WEIGHTS_FORMS}: none = 1 everywhere, "
        "balanced = each class the same total weight, BG,FG = the weights of background "
        "and cell pixels (default: none)",
    )
    w.add_argument(
        "--spacing",
        type=parse_spacing,
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
    batch.add_batch_options(w)
    add_engine_options(w)
    w.set_defaults(run=run, subparser=w)
    return w


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``losslens weights``; return the exit status."""
    # torch is imported when a command runs, not for --help
    from ..core import unet_weight_map

    outdir = Path(args.outdir)
    device = batch.check_device(parser, args.device)
    engine = make_engine(parser, args)
    batch.prepare_outdir(parser, outdir)
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
            parser.error(speak_options(str(err), OPTIONS))

    paths = [Path(p) for p in args.labels]
    outputs = [outdir / batch.output_name(p, args.format) for p in paths]
    if not batch.prepare_outputs(
        paths, [Output(o, str(p)) for p, o in zip(paths, outputs, strict=True)]
    ):
        return EXIT_FAILED

    def step(i: int) -> str:
        path, out = paths[i], outputs[i]
        if out.exists() and args.skip_existing:
            return "skipped"
        if out.exists() and not args.overwrite:
            raise CliError(f"{out} exists; pass --overwrite to replace it")
        labels = _io.read(path, args.chunks)
        try:
            w = unet_weight_map(labels, **params, device=device)
            batch.write_output(out, w, args.overwrite, engine)
        except (TypeError, ValueError) as err:
            raise CliError(speak_options(describe(err), OPTIONS)) from err
        except OSError as err:
            raise CliError(f"cannot write {out}: {describe(err)}") from err
        return "written"

    runner = batch.Batch(paths, "weights", args.quiet)
    start = time.perf_counter()
    with batch.sigterm_interrupts():
        runner.run_within(running(parser, engine), step)
    seconds = time.perf_counter() - start
    settings = ", ".join(f"{k}={v}" for k, v in params.items() if v is not None)
    if engine.chunks is not None:
        settings += f", {engine.describe()}"
    skipped = f", {runner.counts['skipped']} skipped (existing)" if args.skip_existing else ""
    print(
        f"{runner.counts['written']} weight map(s) written to {outdir}{skipped}, "
        f"{runner.counts['failed']} failed, in {seconds:.1f} s ({settings})"
    )
    runner.report_interruption()
    return runner.exit_status
