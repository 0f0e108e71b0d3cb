"""The ``losslens`` command line: U-Net weight maps and loss maps for files, and a demo.

Files in, files out, through :mod:`napari_losslens.core`. napari and Qt are imported only by
``losslens demo``; ``weights`` and ``loss`` run on a machine without a screen.

Conventions shared by the subcommands:

- Results go to stdout (the summary, the loss values or table); progress bars and errors go
  to stderr, one line per bad file, naming the file and what is wrong.
- A bad file does not stop the others. Exit status: 0 when everything was done, 1 when any
  file failed (or an output was refused), 2 for a usage error (nothing was done).
- Nothing is overwritten unless ``--overwrite`` is given, and an output file is never left
  half-written: it is written to a temporary file in the same folder and moved into place.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import math
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

__all__ = ["main"]

PROG = "losslens"
LABEL_SUFFIXES = (".tif", ".tiff", ".npy")
TIFF_SUFFIXES = (".tif", ".tiff")

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A problem with one file: reported as one line, the other files go on."""


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


def _read_array(path: Path):
    """A numpy array from a TIFF or ``.npy`` file; ``CliError`` with the reason otherwise."""
    import numpy as np

    suffix = path.suffix.lower()
    if suffix not in LABEL_SUFFIXES:
        raise CliError(
            f"unsupported file type {path.suffix or '(none)'!r} "
            f"(expected {', '.join(LABEL_SUFFIXES)})"
        )
    if not path.exists():
        raise CliError("no such file")
    if path.is_dir():
        raise CliError("is a folder, not a file")
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        tifffile = _import_tifffile()
        return tifffile.imread(path)
    except CliError:
        raise
    except Exception as err:
        kind = "TIFF" if suffix in TIFF_SUFFIXES else ".npy"
        raise CliError(f"cannot read it as a {kind} file: {_describe(err)}") from err


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
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        write(tmp)
        if not overwrite and path.exists():
            raise CliError(f"{path} exists; pass --overwrite to replace it")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _write_tiff(path: Path, array, overwrite: bool) -> None:
    tifffile = _import_tifffile()

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as fh:
            tifffile.imwrite(fh, array, photometric="minisblack")

    _atomic_write(path, write, overwrite)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _output_name(path: Path) -> str:
    """The output file name for an input: the same name, ``.npy`` becoming ``.tif``."""
    return path.stem + ".tif" if path.suffix.lower() not in TIFF_SUFFIXES else path.name


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
    written = failed = 0
    start = time.perf_counter()
    for path in _progress(paths, "weights", args.quiet):
        out = outdir / _output_name(path)
        try:
            if out.name in seen:
                raise CliError(f"same output name as {seen[out.name]}: both would write {out}")
            seen[out.name] = path
            if _same_file(out, path):
                raise CliError(f"the output {out} would replace the input")
            if out.exists() and not args.overwrite:
                raise CliError(f"{out} exists; pass --overwrite to replace it")
            labels = _read_array(path)
            try:
                w = unet_weight_map(labels, **params, device=device)
            except (TypeError, ValueError) as err:
                raise CliError(_describe(err)) from err
            _write_tiff(out, np.asarray(w, dtype=np.float32), args.overwrite)
            written += 1
        except CliError as err:
            failed += 1
            _error(f"{path}: {err}")
        except OSError as err:
            failed += 1
            _error(f"{path}: cannot write {out}: {_describe(err)}")
    seconds = time.perf_counter() - start
    settings = ", ".join(f"{k}={v}" for k, v in params.items() if v is not None)
    print(
        f"{written} weight map(s) written to {outdir}, {failed} failed, "
        f"in {seconds:.1f} s ({settings})"
    )
    return EXIT_FAILED if failed else EXIT_OK


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
        return [None] * len(predictions)
    out = Path(args.output)
    is_file = out.suffix.lower() in TIFF_SUFFIXES and not out.is_dir()
    if len(predictions) == 1 and is_file:
        if not out.parent.is_dir():
            parser.error(f"-o {out}: the folder {out.parent} does not exist")
        return [out]
    if is_file:
        parser.error(f"-o {out}: with {len(predictions)} pairs, -o must be a folder")
    if len(predictions) == 1 and not out.exists() and out.suffix:
        parser.error(f"-o {out}: a loss map file must end in .tif or .tiff")
    _prepare_outdir(parser, out)
    return [out / _output_name(p) for p in predictions]


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
    params = _loss_params(parser, args.loss, args.param or [])
    outputs = _loss_outputs(parser, args, predictions)
    csv_path = None if args.csv in (None, "-") else Path(args.csv)
    if csv_path is not None and csv_path.exists() and not args.overwrite:
        parser.error(f"--csv {csv_path}: exists; pass --overwrite to replace it")
    import numpy as np

    from .core import loss_map, loss_value

    rows: list[dict[str, str]] = []
    seen: dict[Path, Path] = {}
    failed = 0
    pairs = list(range(len(predictions)))
    quiet = args.quiet or len(pairs) == 1
    for i in _progress(pairs, "loss", quiet):
        pred_path, target_path, out = predictions[i], targets[i], outputs[i]
        try:
            if out is not None:
                if out in seen:
                    raise CliError(f"same map name as {seen[out]}: both would write {out}")
                seen[out] = pred_path
                for p in (pred_path, target_path, *masks[i : i + 1]):
                    if _same_file(out, p):
                        raise CliError(f"the map {out} would replace the input {p}")
                if out.exists() and not args.overwrite:
                    raise CliError(f"{out} exists; pass --overwrite to replace it")
            arrays = {}
            for role, path in (("prediction", pred_path), ("target", target_path)) + (
                (("mask", masks[i]),) if masks else ()
            ):
                try:
                    arrays[role] = _read_array(path)
                except CliError as err:
                    raise CliError(f"{role} {path}: {err}") from None
            if "mask" in arrays:
                arrays["mask"] = np.asarray(arrays["mask"]) != 0
            kwargs = dict(
                from_logits=args.from_logits, mask=arrays.get("mask"), device=device, **params
            )
            try:
                value = loss_value(arrays["prediction"], arrays["target"], args.loss, **kwargs)
                if out is not None:
                    lmap = loss_map(arrays["prediction"], arrays["target"], args.loss, **kwargs)
            except (TypeError, ValueError) as err:
                raise CliError(_describe(err)) from err
            if out is not None:
                _write_tiff(out, np.asarray(lmap, dtype=np.float32), args.overwrite)
            rows.append(
                {
                    "prediction": str(pred_path),
                    "target": str(target_path),
                    "loss": args.loss,
                    "value": _fmt(value),
                    "map": "" if out is None else str(out),
                }
            )
        except CliError as err:
            failed += 1
            _error(f"{pred_path}: {err}")
        except OSError as err:
            failed += 1
            _error(f"{pred_path}: cannot write {out}: {_describe(err)}")

    columns = ["prediction", "target", "loss", "value"]
    if args.output is not None:
        columns.append("map")
    if args.csv is not None:
        text = _csv_text(rows, columns)
        if csv_path is None:
            sys.stdout.write(text)
        else:
            try:
                _atomic_write(
                    csv_path, lambda tmp: tmp.write_text(text, encoding="utf-8"), args.overwrite
                )
            except (CliError, OSError) as err:
                failed += 1
                _error(f"--csv {csv_path}: {_describe(err)}")
    elif len(predictions) == 1:
        if rows:
            print(rows[0]["value"])
    else:
        _print_table(rows, columns, sys.stdout)
    if len(predictions) > 1 or failed:
        print(
            f"{len(rows)} pair(s) scored with {args.loss!r}, {failed} failed",
            file=sys.stderr,
        )
    return EXIT_FAILED if failed else EXIT_OK


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
Each output is a float32 TIFF with the input's name (.npy becomes .tif) in OUTDIR.

examples:
  losslens weights train/labels/*.tif -o train/weights
  losslens weights stack.tif --spacing 2,0.5,0.5 --sigma 3 --class-weights balanced -o w/
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
        description="Write the U-Net weight map of each label image (TIFF or .npy) to OUTDIR.",
        epilog=WEIGHTS_EPILOG,
        formatter_class=_Formatter,
    )
    w.add_argument(
        "labels",
        nargs="+",
        metavar="LABELS",
        help="label images: .tif/.tiff or .npy, 2D or 3D, 0 = background",
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
        help="prediction files (.tif/.npy): probabilities in [0, 1], or logits "
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
        help="where to write the loss maps (float32 TIFF): a .tif file for one "
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
        "--device",
        default="auto",
        metavar="{auto,cpu,cuda,cuda:N}",
        help="where to compute: auto = CUDA when available, else CPU (default: %(default)s)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files (default: off, existing files are "
        "refused and count as failures)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar (default: off)")


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
