"""Option values from text: class weights, spacing, booleans, numbers, chunk sizes and
loss parameters.

Each parser raises :class:`argparse.ArgumentTypeError` (or ``ValueError``) with a message
that says what was expected and what was got, so that argparse reports it as a usage error
naming the option.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import _io
from ._common import CliError

__all__ = [
    "CLASS_WEIGHTS_FORMS",
    "convert_param",
    "finite_float",
    "parse_bool",
    "parse_chunks",
    "parse_class_weights",
    "parse_spacing",
    "speak_options",
]

# the accepted forms of --class-weights (and of a loss's class_weights parameter)
CLASS_WEIGHTS_FORMS = "'none', 'balanced' or two numbers 'BG,FG' (e.g. 0.5,2)"


def parse_class_weights(text: str):
    """``None``, ``"balanced"`` or a ``(background, foreground)`` pair of floats."""
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
        raise argparse.ArgumentTypeError(f"expected {CLASS_WEIGHTS_FORMS}, got {text!r}")
    return pair


def parse_spacing(text: str):
    """``None``, one positive number, or a tuple of one positive number per axis."""
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


def parse_bool(text: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``)."""
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def finite_float(text: str) -> float:
    """A finite number."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def parse_chunks(text: str) -> tuple[int, ...]:
    """One positive chunk size for every axis, or one per axis."""
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


def convert_param(kind: str, text: str, files: list[Path]) -> Any:
    """A loss parameter's value, from text, for a parameter of the given registry kind.

    The ``--param NAME=VALUE`` of ``losslens loss`` and the ``NAME:PARAM=VALUE`` of
    ``losslens compare``. An array parameter is read from a file, whose path is added to
    ``files`` (an input of the run, which no output may replace); a kind the command line
    does not know gets the most literal reading (None, int, float, bool, else the text).

    Raises:
        ValueError: the text does not convert (or the array file cannot be read).
        argparse.ArgumentTypeError: a bad class weights or spacing value.

    Example:
        >>> convert_param("spacing", "2,1", []), convert_param("optional_float", "none", [])
        ((2.0, 1.0), None)
    """
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
        return parse_bool(t)
    if kind == "class_weights":
        return parse_class_weights(t)
    if kind == "spacing":
        return parse_spacing(t)
    if kind == "array":
        if t.lower() == "none":
            return None
        files.append(Path(t))
        try:
            return _io.read_array(Path(t))
        except CliError as err:
            raise ValueError(f"{t}: {err}") from None
    # a kind this command line does not know: the most literal reading
    if t.lower() == "none":
        return None
    for convert in (int, float, parse_bool):
        try:
            return convert(t)
        except ValueError:
            pass
    return t


def _with_value(option: str, value: str) -> str:
    if value in ("True", ""):
        return option
    if value == "False":
        return f"no {option}"
    if value == "None":
        return f"{option} none"
    return f"{option} {value.strip(chr(39) + chr(34))}"


def speak_options(message: str, options: Mapping[str, str]) -> str:
    """A core error message with its Python keyword names turned into command-line options.

    ``options`` maps keyword names to options (``{"from_logits": "--from-logits"}``).
    ``name=value`` becomes the option with its value (``from_logits=True`` →
    ``--from-logits``, ``device='cpu'`` → ``--device cpu``); a name with an underscore or a
    digit (``class_weights``, ``w0``) becomes the option wherever it stands as a word; a
    plain word (``sigma``, ``mask``) only where it is what the sentence is about (followed
    by ``must``, ``values`` or ``and ... must``), so that prose keeps its words.

    Example:
        >>> speak_options("w0 must be >= 0; pass from_logits=True", {"w0": "--w0",
        ...     "from_logits": "--from-logits"})
        '--w0 must be >= 0; pass --from-logits'
    """
    for name in sorted(options, key=len, reverse=True):
        option = options[name]
        word = re.escape(name)
        message = re.sub(
            rf"(?<![\w-]){word}=(True|False|None|'[^']*'|\"[^\"]*\"|[^\s,;)]*)",
            lambda m, option=option: _with_value(option, m[1]),
            message,
        )
        if "_" in name or any(c.isdigit() for c in name):
            message = re.sub(rf"(?<![\w-]){word}(?![\w=-])", option, message)
        else:
            message = re.sub(
                rf"(?<![\w-]){word}(?= must\b| values\b| and \S+ must\b)", option, message
            )
    # "None" is Python's; an option that may be left out has a default instead
    return message.replace("must be None, ", "must be ")
