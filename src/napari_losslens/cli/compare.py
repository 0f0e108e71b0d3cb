"""``losslens compare``: several losses for one prediction, or one loss for two predictions.

For each target and prediction (and prediction B when two models are compared) it writes
one float32 TIFF per map into a folder named after the prediction, and a CSV: the loss
values (several losses), or the per-object change in loss, Dice and IoU from model A to
model B (two models). The computation is :func:`napari_losslens._compare.compare_arrays`,
the same as the widget's compare mode and ``napari_losslens.compare``.
"""

from __future__ import annotations

import argparse
import csv
import io
import re
import sys
from pathlib import Path
from typing import Any

from . import _io, batch
from ._common import EXIT_FAILED, EXIT_OK, CliError, Formatter, describe, error, fmt
from .options import convert_param
from .outputs import Output, conflicts

__all__ = ["add_parser", "parse_loss_spec", "run"]

EPILOG = """\
A loss is NAME or NAME:PARAM=VALUE,PARAM=VALUE (see `losslens loss --help` for the losses
and their parameters). The maps are written in the loss's own units: the per-pixel loss of
a pixel loss, the gradient dL/dp of a region loss (the viewer's panes show each divided by
the sum of its absolute values); diff is prediction A's map minus prediction B's.

outputs, for each prediction P (A) in -o DIR:
  DIR/<P>/<loss>.tif                    several losses: one map per loss
  DIR/<P>/A_<loss>.tif, B_<loss>.tif,   two models: the map of each, and A - B
     diff_<loss>.tif
  --csv (default DIR/compare.csv)       several losses: target, prediction, loss, value, map
                                        two models: one row per object of each target:
                                        index, area, loss_a, loss_b, loss_change, dice_a,
                                        dice_b, dice_change, iou_a, iou_b, iou_change, verdict

examples:
  losslens compare --target t.tif --prediction p.tif --loss bce --loss focal:gamma=1 \\
      --loss dice -o cmp
  losslens compare --target t1.tif t2.tif --prediction a1.tif a2.tif \\
      --prediction-b b1.tif b2.tif --loss bce -o cmp --csv changes.csv
"""


def add_parser(sub) -> argparse.ArgumentParser:
    """Add ``compare`` to the subcommands ``sub``; return its parser."""
    co = sub.add_parser(
        "compare",
        help="maps of several losses, or of two models, and what changed per object",
        description=(
            "Compare 2-6 losses on one prediction, or one loss on two predictions (model A\n"
            "and model B): write the maps, and a CSV of the loss values or of the per-object\n"
            "change in loss, Dice and IoU. Files are matched in order."
        ),
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    co.add_argument(
        "--target",
        action="extend",
        nargs="+",
        required=True,
        metavar="T",
        help="ground-truth instance labels (.tif/.npy/.zarr) (required)",
    )
    co.add_argument(
        "--prediction",
        action="extend",
        nargs="+",
        required=True,
        metavar="A",
        help="predictions (model A): probabilities, or logits with --from-logits; one per "
        "target (required)",
    )
    co.add_argument(
        "--prediction-b",
        action="extend",
        nargs="+",
        metavar="B",
        help="model B's predictions, one per target: compare two models with one --loss "
        "(default: compare losses on --prediction)",
    )
    co.add_argument(
        "--loss",
        action="append",
        required=True,
        metavar="SPEC",
        help="a loss, NAME or NAME:PARAM=VALUE,...; repeat for several (required)",
    )
    co.add_argument(
        "--from-logits",
        action="store_true",
        help="the predictions hold logits, not probabilities (default: off)",
    )
    co.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="DIR",
        help="folder for the maps (one subfolder per prediction) (required)",
    )
    co.add_argument(
        "--csv",
        metavar="FILE",
        help="where to write the CSV (default: DIR/compare.csv)",
    )
    co.add_argument(
        "--device",
        default="auto",
        metavar="{auto,cpu,cuda,cuda:N}",
        help="where to compute: auto = CUDA when available, else CPU (default: %(default)s)",
    )
    co.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing maps and CSV (default: off, existing files are refused)",
    )
    co.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")
    co.set_defaults(run=run, subparser=co)
    return co


def parse_loss_spec(text: str, files: list[Path] | None = None) -> tuple[str, dict[str, Any]]:
    """``"focal:gamma=1,alpha=0.25"`` as ``("focal", {"gamma": 1.0, "alpha": 0.25})``.

    Values are converted by each parameter's kind in the registry; the files that array
    parameters are read from are appended to ``files`` (inputs no output may replace).

    Raises:
        ValueError: an unknown loss or parameter, or a value that does not convert.
    """
    # torch is imported when a command runs, not for --help
    from ..core import available_losses

    name, _, rest = text.partition(":")
    name = name.strip()
    losses = available_losses()
    if name not in losses:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(losses)}")
    kinds = {p.name: p.kind for p in losses[name].params}
    params: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in kinds:
            known = ", ".join(kinds) or "none"
            raise ValueError(
                f"{item!r}: expected PARAM=VALUE with a parameter of {name!r} ({known})"
            )
        params[key] = convert_param(kinds[key], value, [] if files is None else files)
    return name, params


def _slug(title: str) -> str:
    """A file name from a pane title: ``"focal (gamma=1)"`` -> ``"focal_gamma-1"``."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", title.replace("=", "-")).strip("_")


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _cell(value) -> str:
    """A table cell: floats with enough digits to round-trip float32, the rest as text."""
    value = value.item() if hasattr(value, "item") else value  # numpy scalars
    return fmt(value) if isinstance(value, float) else str(value)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``losslens compare``; return the exit status."""
    targets = [Path(p) for p in args.target]
    preds_a = [Path(p) for p in args.prediction]
    preds_b = [Path(p) for p in args.prediction_b or []]
    if len(preds_a) != len(targets) or (preds_b and len(preds_b) != len(targets)):
        parser.error(
            f"got {len(targets)} --target, {len(preds_a)} --prediction and {len(preds_b)} "
            "--prediction-b file(s); give one of each per target"
        )
    param_files: list[Path] = []
    try:
        specs_in = [parse_loss_spec(s, param_files) for s in args.loss]
    except ValueError as err:
        parser.error(f"--loss: {err}")
    # torch is imported when a command runs, not for --help
    from .._compare import compare_arrays, parse_losses

    try:
        specs = parse_losses(specs_in)
    except (TypeError, ValueError) as err:
        parser.error(f"--loss: {err}")
    models = bool(preds_b)
    if models and len(specs) != 1:
        parser.error(f"two models are compared with one --loss, got {len(specs)}")
    if not models and len(specs) < 2:
        parser.error("comparing losses needs 2 to 6 --loss options (or give --prediction-b)")
    device = batch.check_device(parser, args.device)
    outdir = Path(args.output)
    batch.prepare_outdir(parser, outdir)
    csv_path = Path(args.csv) if args.csv else outdir / "compare.csv"
    if csv_path.exists() and not args.overwrite:
        parser.error(f"--csv {csv_path}: exists; pass --overwrite to replace it")
    stems = [p.stem for p in preds_a]
    if len(set(stems)) != len(stems):
        parser.error("the --prediction files must have different names (one folder each)")
    # the CSV against every input of the run, before anything is written (each map is
    # checked against its own inputs before it is written)
    if not batch.prepare_outputs(
        [*targets, *preds_a, *preds_b, *param_files], [Output(csv_path, "--csv")]
    ):
        return EXIT_FAILED
    if models:
        columns = ["target", "prediction_a", "prediction_b", "loss", "index", "area"]
        columns += ["loss_a", "loss_b", "loss_change", "dice_a", "dice_b", "dice_change"]
        columns += ["iou_a", "iou_b", "iou_change", "verdict"]
    else:
        columns = ["target", "prediction", "loss", "value", "map"]
    rows: list[dict[str, Any]] = []

    def step(i: int) -> str:
        inputs = [("target", targets[i]), ("prediction", preds_a[i])]
        if models:
            inputs.append(("prediction B", preds_b[i]))
        folder = outdir / stems[i]
        arrays = []
        for role, path in inputs:
            try:
                arrays.append(_io.read(path, None))
            except CliError as err:
                raise CliError(f"{role} {path}: {err}") from None
        try:
            c = compare_arrays(
                arrays[0], arrays[1:], specs, from_logits=args.from_logits, device=device
            )
        except (TypeError, ValueError) as err:
            raise CliError(describe(err)) from err
        maps = [(_slug(p.title.replace(": ", "_")), p.raw) for p in c.panes]
        if c.difference is not None:
            maps.append((f"diff_{_slug(specs[0].title)}", c.difference))
        folder.mkdir(exist_ok=True)
        written = {}
        for name, data in maps:
            out = folder / f"{name}.tif"
            problems = conflicts([path for _, path in inputs], [Output(out, f"map {name}")])
            if problems:
                raise CliError(problems[0])
            try:
                batch.write_output(out, data, args.overwrite, None)
            except OSError as err:
                raise CliError(f"cannot write {out}: {describe(err)}") from err
            written[name] = out
        if models:
            t = c.table
            for j in range(len(t["index"])):
                row = {
                    "target": str(targets[i]),
                    "prediction_a": str(preds_a[i]),
                    "prediction_b": str(preds_b[i]),
                    "loss": specs[0].title,
                }
                row.update({k: _cell(t[k][j]) for k in columns[4:]})
                rows.append(row)
        else:
            for pane, (name, _) in zip(c.panes, maps, strict=False):
                rows.append(
                    {
                        "target": str(targets[i]),
                        "prediction": str(preds_a[i]),
                        "loss": pane.title,
                        "value": fmt(pane.value),
                        "map": str(written[name]),
                    }
                )
        return "written"

    runner = batch.Batch(preds_a, "compare", args.quiet or len(preds_a) == 1)
    with batch.sigterm_interrupts():
        runner.run(step)
        failed = runner.counts["failed"]
        try:
            text = _csv_text(rows, columns)
            batch.atomic_write(
                csv_path, lambda tmp: tmp.write_text(text, encoding="utf-8"), args.overwrite
            )
        except (CliError, OSError) as err:
            failed += 1
            error(f"--csv {csv_path}: {describe(err)}")
    print(
        f"{len(preds_a) - runner.counts['failed']} comparison(s) written to {outdir}, "
        f"{failed} failed; table: {csv_path}",
        file=sys.stderr,
    )
    runner.report_interruption()
    if runner.signum is not None:
        return runner.exit_status
    return EXIT_FAILED if failed else EXIT_OK
