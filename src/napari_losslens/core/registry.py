"""The loss registry: what losses exist, their parameters, and how a GUI should show them.

Every loss is a function registered with :func:`register_loss`. The public functions
(:func:`~napari_losslens.core.maps.loss_map`, ``gradient_map``, ``loss_value``) look losses
up here, and :func:`available_losses` describes them, so that a GUI can build its controls
from the registry and a new loss appears everywhere without GUI changes.

The registry knows no loss: each loss family in :mod:`napari_losslens.core.losses` registers
its own losses when it is imported, and ``napari_losslens.core`` imports them all, so the
built-in losses are registered by the time any of the package is usable.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "LossInfo",
    "LossParam",
    "available_losses",
    "get_loss",
    "order_losses",
    "register_loss",
]


@dataclass(frozen=True)
class LossParam:
    """One parameter of a loss.

    Attributes:
        name: keyword name.
        default: default value.
        kind: ``"float"``, ``"int"``, ``"bool"``, ``"optional_float"`` (a float or None),
            ``"class_weights"`` (None, "balanced" or a pair), ``"spacing"`` (None or one
            value per axis) or ``"array"`` (an optional precomputed array).
        description: one line for tooltips and docs.
        minimum, maximum: the valid range (inclusive unless ``exclusive_minimum``).
        exclusive_minimum: the minimum itself is not allowed (e.g. sigma > 0).
        gui: whether a GUI should show a control for it (arrays and spacing come from
            layers instead).
    """

    name: str
    default: Any
    kind: str = "float"
    description: str = ""
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    gui: bool = True

    def validate(self, value: Any, loss: str) -> Any:
        """Return ``value`` checked (and converted), or raise ``TypeError``/``ValueError``."""
        if self.kind in ("float", "int", "optional_float"):
            if value is None and self.kind == "optional_float":
                return None
            if isinstance(value, bool) or (
                not isinstance(value, (int, float)) and not hasattr(value, "__float__")
            ):
                raise TypeError(
                    f"parameter {self.name!r} of loss {loss!r} must be a number, got {value!r}"
                )
            v = float(value)
            if not math.isfinite(v):
                raise ValueError(
                    f"parameter {self.name!r} of loss {loss!r} must be finite, got {value!r}"
                )
            if self.minimum is not None:
                if v < self.minimum or (self.exclusive_minimum and v == self.minimum):
                    rel = ">" if self.exclusive_minimum else ">="
                    raise ValueError(
                        f"parameter {self.name!r} of loss {loss!r} must be {rel} "
                        f"{self.minimum}, got {value!r}"
                    )
            if self.maximum is not None and v > self.maximum:
                raise ValueError(
                    f"parameter {self.name!r} of loss {loss!r} must be <= {self.maximum}, "
                    f"got {value!r}"
                )
            return int(v) if self.kind == "int" else v
        if self.kind == "bool":
            if not isinstance(value, (bool, int)) or value not in (0, 1):
                raise TypeError(
                    f"parameter {self.name!r} of loss {loss!r} must be True or False, "
                    f"got {value!r}"
                )
            return bool(value)
        return value  # class_weights, spacing, array: checked where they are used


@dataclass(frozen=True)
class LossInfo:
    """Description of a registered loss.

    Attributes:
        name: the key to pass as ``loss=``.
        title: a human name ("Binary cross-entropy").
        kind: ``"pixel"`` (a per-pixel loss whose mean is the scalar loss) or ``"region"``
            (a loss of sums over the image, with no per-pixel value: its map is the signed
            gradient ∂L/∂p).
        params: the parameters, in display order.
        formula: the formula in LaTeX.
        reference: where it comes from.
        multiclass: whether it accepts a leading class axis.
        blockwise: whether the chunked (dask) path may compute it block by block, i.e. it
            is made of elementwise terms and sums over the counted pixels only (not of
            sorting, maxima, neighbourhoods or distance maps of the whole image).
    """

    name: str
    title: str
    kind: Literal["pixel", "region"]
    params: tuple[LossParam, ...]
    formula: str = ""
    reference: str = ""
    description: str = ""
    func: Callable[..., Any] | None = field(default=None, repr=False, compare=False)
    multiclass: bool = False
    blockwise: bool = True

    @property
    def defaults(self) -> dict[str, Any]:
        """Parameter names mapped to their defaults."""
        return {p.name: p.default for p in self.params}

    @property
    def pixelwise(self) -> bool:
        """True for per-pixel losses, False for region losses."""
        return self.kind == "pixel"

    def resolve_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults updated with ``params``, each validated.

        Raises:
            TypeError: an unknown parameter name (the message lists the known ones) or a
                value of the wrong type.
            ValueError: a value out of range.
        """
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            names = ", ".join(known) or "none"
            raise TypeError(
                f"unknown parameter(s) {', '.join(map(repr, unknown))} for loss "
                f"{self.name!r}; it takes: {names}"
            )
        out = {}
        for name, p in known.items():
            out[name] = p.validate(params[name], self.name) if name in params else p.default
        return out


_REGISTRY: dict[str, LossInfo] = {}


def register_loss(
    name: str,
    *,
    title: str,
    kind: Literal["pixel", "region"],
    params: tuple[LossParam, ...] = (),
    formula: str = "",
    reference: str = "",
    description: str = "",
    multiclass: bool = False,
    blockwise: bool = True,
):
    """Decorator that registers a loss function under ``name``.

    The function is called as ``func(ctx, **params)`` with a
    :class:`~napari_losslens.core.losses.LossContext` and returns the per-pixel loss
    (``kind="pixel"``) or the scalar loss (``kind="region"``) as a tensor. Pass
    ``blockwise=False`` for a loss that needs the whole image at once (sorting, a global
    maximum, a neighbourhood operation): the chunked path then refuses it.
    """
    if kind not in ("pixel", "region"):
        raise ValueError(f"kind must be 'pixel' or 'region', got {kind!r}")

    def decorator(func):
        if name in _REGISTRY:
            raise ValueError(f"a loss named {name!r} is already registered")
        _REGISTRY[name] = LossInfo(
            name=name,
            title=title,
            kind=kind,
            params=tuple(params),
            formula=formula,
            reference=reference,
            description=description or (func.__doc__ or "").strip().split("\n")[0],
            func=func,
            multiclass=multiclass,
            blockwise=blockwise,
        )
        return func

    return decorator


def order_losses(names) -> None:
    """Put the named losses first, in this order, in :func:`available_losses` (and GUIs).

    The losses not named keep their registration order after them. The loss families
    register in the order their modules are imported; this sets the order in which a
    person sees them, independent of where each is defined.

    Raises:
        ValueError: a name that is not registered.
    """
    names = list(names)
    unknown = [n for n in names if n not in _REGISTRY]
    if unknown:
        raise ValueError(f"cannot order unregistered loss(es): {', '.join(map(repr, unknown))}")
    rest = {k: v for k, v in _REGISTRY.items() if k not in names}
    ordered = {n: _REGISTRY[n] for n in names}
    _REGISTRY.clear()
    _REGISTRY.update(ordered)
    _REGISTRY.update(rest)


def get_loss(name: str) -> LossInfo:
    """The registered loss called ``name``.

    Raises:
        ValueError: no such loss (the message lists the available ones).
        TypeError: ``name`` is not a string.
    """
    if not isinstance(name, str):
        raise TypeError(f"loss must be a name (str), got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(_REGISTRY)}") from None


def available_losses() -> dict[str, LossInfo]:
    """All registered losses, by name, in registration order.

    Each :class:`LossInfo` lists the loss's parameters with defaults and valid ranges and says
    whether it is pixel-wise or a region loss, so that a GUI can build itself from it.

    Example:
        >>> info = available_losses()["dice"]
        >>> info.kind, info.defaults
        ('region', {'smooth': 1e-06, 'gamma': 2.0})
    """
    return dict(_REGISTRY)
