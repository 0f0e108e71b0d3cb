"""Option values from text: class weights, spacing, booleans, numbers and chunk sizes.

Each parser raises :class:`argparse.ArgumentTypeError` (or ``ValueError``) with a message
that says what was expected and what was got, so that argparse reports it as a usage error
naming the option.
"""

from __future__ import annotations

import argparse
import math

__all__ = [
    "CLASS_WEIGHTS_FORMS",
    "finite_float",
    "parse_bool",
    "parse_chunks",
    "parse_class_weights",
    "parse_spacing",
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
