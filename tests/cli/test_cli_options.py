"""Loss parameter values from text (`--param` of `loss`, `NAME:PARAM=VALUE` of `compare`)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from napari_losslens.cli.options import convert_param


@pytest.mark.parametrize(
    ("kind", "text", "want"),
    [
        ("float", " 2.5 ", 2.5),
        ("optional_float", "None", None),
        ("optional_float", "1e-3", 1e-3),
        ("int", "7", 7),
        ("int", "1e2", 100),
        ("bool", "off", False),
        ("bool", "yes", True),
        ("class_weights", "balanced", "balanced"),
        ("class_weights", "0.5,2", (0.5, 2.0)),
        ("spacing", "2,1,1", (2.0, 1.0, 1.0)),
        ("spacing", "0.5", 0.5),
        ("spacing", "none", None),
        ("array", "none", None),
        # a kind the command line does not know: the most literal reading
        ("new_kind", "none", None),
        ("new_kind", "3", 3),
        ("new_kind", "3.5", 3.5),
        ("new_kind", "true", True),
        ("new_kind", "text", "text"),
    ],
)
def test_each_kind_converts_its_text(kind, text, want):
    files = []
    got = convert_param(kind, text, files)
    assert got == want and type(got) is type(want)
    assert files == []


def test_an_array_parameter_is_read_from_its_file_and_recorded_as_an_input(tmp_path):
    path = tmp_path / "w.npy"
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(path, arr)
    files = []
    got = convert_param("array", f" {path} ", files)
    np.testing.assert_array_equal(got, arr)
    assert files == [path]


def test_an_unreadable_array_file_names_the_file(tmp_path):
    path = tmp_path / "missing.npy"
    files = []
    with pytest.raises(ValueError, match=rf"{path.name}: .*"):
        convert_param("array", str(path), files)
    assert files == [path]  # still an input: no output may replace it


@pytest.mark.parametrize(
    ("kind", "text", "error", "match"),
    [
        ("int", "2.5", ValueError, r"expected an integer, got '2.5'"),
        ("float", "abc", ValueError, "could not convert string to float"),
        ("bool", "maybe", ValueError, r"expected true or false, got 'maybe'"),
        ("class_weights", "1,2,3", argparse.ArgumentTypeError, r"two numbers .*got '1,2,3'"),
        ("spacing", "-1", argparse.ArgumentTypeError, r"positive number .*got '-1'"),
    ],
)
def test_a_value_that_does_not_convert_says_what_was_expected(kind, text, error, match):
    with pytest.raises(error, match=match):
        convert_param(kind, text, [])
