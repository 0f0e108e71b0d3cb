"""``losslens loss``: loss values, tables and loss maps for prediction/target pairs."""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import _io, batch
from ._common import EXIT_FAILED, EXIT_OK, CliError, Formatter, describe, error, fmt
from .engine import add_engine_options, make_engine, running
from .options import convert_param, speak_options
from .outputs import Output

__all__ = ["add_parser", "run"]

# core's keyword names, as this command's options (for error messages); a loss's own
# parameters are added as "--param NAME"
OPTIONS = {"from_logits": "--from-logits", "mask": "--mask", "device": "--device"}


def add_parser(sub) -> argparse.ArgumentParser:
    """Add ``loss`` to the subcommands ``sub``; return its parser."""
    lo = sub.add_parser(
        "loss",
        help="loss values and loss maps for prediction/target pairs",
        description=(
            "Score predictions against targets: print the loss (one pair) or a table (several\n"
            "pairs), and write the loss maps with -o. Pairs are matched in order."
        ),
        formatter_class=Formatter,
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
    batch.add_batch_options(lo)
    add_engine_options(lo)
    lo.set_defaults(run=run, subparser=lo)
    return lo


# --------------------------------------------------------------------------------------
# --loss and --param
# --------------------------------------------------------------------------------------


def _loss_params(
    parser: argparse.ArgumentParser, loss: str, items: Sequence[str]
) -> tuple[dict[str, Any], dict[str, str], list[Path]]:
    """``--param name=value`` items converted by each parameter's kind, then validated.

    Returns the parameters, the options that name them in messages (``--param beta``), and
    the files read for array parameters.
    """
    # torch is imported when a command runs, not for --help
    from ..core import available_losses

    losses = available_losses()
    if loss not in losses:
        parser.error(f"--loss {loss}: unknown loss; available: {', '.join(losses)}")
    info = losses[loss]
    kinds = {p.name: p.kind for p in info.params}
    options = {**OPTIONS, **{name: f"--param {name}" for name in kinds}}
    params: dict[str, Any] = {}
    files: list[Path] = []
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
            params[name] = convert_param(kinds[name], value, files)
        except (ValueError, argparse.ArgumentTypeError) as err:
            parser.error(f"--param {item}: {err}")
    try:
        info.resolve_params(params)
    except (TypeError, ValueError) as err:
        # the registry says "parameter 'beta' of loss 'weighted_bce' must be ..."
        text = re.sub(r"parameter '(\w+)' of loss '[^']*'", r"--param \1", str(err))
        text = speak_options(text, options)
        parser.error(text if text.startswith("--") else f"--param: {text}")
    return params, options, files


def _losses_epilog() -> str:
    """The registered losses and their parameters, for ``losslens loss --help``."""
    # torch is imported when the loss help is asked for, not for the other commands' help
    from ..core import available_losses

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
# Outputs: maps, the table, the CSV file
# --------------------------------------------------------------------------------------


def _loss_outputs(parser, args, predictions: list[Path]) -> list[Path | None]:
    """Where each pair's loss map goes (None: no map written)."""
    if args.output is None:
        if args.skip_existing:
            parser.error("--skip-existing needs -o: it skips the pairs whose map exists")
        return [None] * len(predictions)
    out = Path(args.output)
    suffix = out.suffix.lower()
    is_file = suffix in _io.OUTPUT_SUFFIXES and (suffix == ".zarr" or not out.is_dir())
    if len(predictions) == 1 and is_file:
        if not out.parent.is_dir():
            parser.error(f"-o {out}: the folder {out.parent} does not exist")
        return [out]
    if is_file:
        parser.error(f"-o {out}: with {len(predictions)} pairs, -o must be a folder")
    if len(predictions) == 1 and not out.exists() and out.suffix:
        parser.error(f"-o {out}: a loss map must end in .tif, .tiff or .zarr")
    batch.prepare_outdir(parser, out)
    return [out / batch.output_name(p, args.format) for p in predictions]


def _read_csv_rows(parser, path: Path, columns: list[str]) -> list[dict[str, str]]:
    """The rows of an existing ``--csv`` file, to be kept by ``--skip-existing``."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            found = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        parser.error(f"--csv {path}: cannot read it: {describe(err)}")
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


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``losslens loss``; return the exit status."""
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
    device = batch.check_device(parser, args.device)
    engine = make_engine(parser, args)
    params, options, param_files = _loss_params(parser, args.loss, args.param or [])
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
    # torch is imported when a command runs, not for --help
    from ..core import loss_map, loss_value

    planned = [Output(o, str(p)) for p, o in zip(predictions, outputs, strict=True) if o]
    if csv_path is not None:
        planned.append(Output(csv_path, "--csv"))
    if not batch.prepare_outputs([*predictions, *targets, *masks, *param_files], planned):
        return EXIT_FAILED
    rows: list[dict[str, str]] = []

    def step(i: int) -> str:
        pred_path, target_path, out = predictions[i], targets[i], outputs[i]
        if out is not None:
            if out.exists() and args.skip_existing:
                return "skipped"
            if out.exists() and not args.overwrite:
                raise CliError(f"{out} exists; pass --overwrite to replace it")
        arrays = {}
        for role, path in (("prediction", pred_path), ("target", target_path)) + (
            (("mask", masks[i]),) if masks else ()
        ):
            try:
                arrays[role] = _io.read(path, args.chunks)
            except CliError as err:
                raise CliError(f"{role} {path}: {err}") from None
        if "mask" in arrays:
            arrays["mask"] = arrays["mask"] != 0
        kwargs = dict(
            from_logits=args.from_logits, mask=arrays.get("mask"), device=device, **params
        )
        try:
            value = loss_value(arrays["prediction"], arrays["target"], args.loss, **kwargs)
            if not math.isfinite(value):
                raise CliError(f"the loss value is {value}: not reported, no map written")
            if out is not None:
                lmap = loss_map(arrays["prediction"], arrays["target"], args.loss, **kwargs)
                batch.write_output(out, lmap, args.overwrite, engine)
        except (TypeError, ValueError) as err:
            raise CliError(speak_options(describe(err), options)) from err
        except OSError as err:
            raise CliError(f"cannot write {out}: {describe(err)}") from err
        rows.append(
            {
                "prediction": str(pred_path),
                "target": str(target_path),
                "loss": args.loss,
                "value": fmt(value),
                "map": "" if out is None else str(out),
            }
        )
        return "written"

    runner = batch.Batch(predictions, "loss", args.quiet or len(predictions) == 1)
    with batch.sigterm_interrupts():
        runner.run_within(running(parser, engine), step)
        failed = runner.counts["failed"]
        # the rows done so far are reported even after an interruption
        if args.csv is not None:
            new_maps = {r["map"] for r in rows}
            merged = [r for r in old_rows if not r.get("map") or r["map"] not in new_maps]
            text = _csv_text(merged + rows, columns)
            if csv_path is None:
                sys.stdout.write(text)
            else:
                try:
                    batch.atomic_write(
                        csv_path,
                        lambda tmp: tmp.write_text(text, encoding="utf-8"),
                        args.overwrite or args.skip_existing,
                    )
                except (CliError, OSError) as err:
                    failed += 1
                    error(f"--csv {csv_path}: {describe(err)}")
        elif len(predictions) == 1:
            if rows:
                print(rows[0]["value"])
        elif rows:
            _print_table(rows, columns, sys.stdout)
    if len(predictions) > 1 or failed or runner.counts["skipped"]:
        skipped = f", {runner.counts['skipped']} skipped (existing)" if args.skip_existing else ""
        print(
            f"{len(rows)} pair(s) scored with {args.loss!r}{skipped}, {failed} failed",
            file=sys.stderr,
        )
    runner.report_interruption()
    if runner.signum is not None:
        return runner.exit_status
    return EXIT_FAILED if failed else EXIT_OK
