"""Shared helpers for the command-line tests."""

from __future__ import annotations

import argparse

import numpy as np
import tifffile

from napari_losslens._testing import touching_cells
from napari_losslens.cli import build_parser


def write_labels(path, shape=(48, 56), n_cells=8, radius=9.0, seed=0):
    """Write a touching-cells label image to ``path`` (.tif or .npy); return the array."""
    lab = touching_cells(shape, n_cells, radius, seed=seed).astype(np.uint16)
    if str(path).endswith(".npy"):
        np.save(path, lab)
    else:
        tifffile.imwrite(path, lab)
    return lab


def write_prediction(path, labels, seed=0):
    """A float32 probability map that roughly follows ``labels``; written to ``path``."""
    rng = np.random.default_rng(seed)
    p = np.clip(0.8 * (labels > 0) + 0.3 * rng.random(labels.shape) - 0.1, 0, 1)
    p = p.astype(np.float32)
    if str(path).endswith(".npy"):
        np.save(path, p)
    else:
        tifffile.imwrite(path, p)
    return p


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[name]
    raise KeyError(name)


def assert_help_documents_every_option(help_text: str, parser: argparse.ArgumentParser):
    """Every option is in the help, and each one's help says its default (or "required")."""
    for action in parser._actions:
        for opt in action.option_strings:
            assert opt in help_text, opt
        if action.option_strings and action.dest not in ("help", "version"):
            text = action.help or ""
            assert "default" in text or (action.required and "required" in text), (
                action.option_strings
            )
