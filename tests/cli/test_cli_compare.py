"""``losslens compare``: maps of several losses or two models, and the CSV, equal to core's."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import tifffile

from napari_losslens._compare import compare_arrays
from napari_losslens.cli import main
from napari_losslens.cli.compare import parse_loss_spec
from napari_losslens.core import loss_map, loss_value

from ._helpers import assert_help_documents_every_option, subparser, write_labels, write_prediction


def _run(*argv):
    return main(["compare", "-q", *map(str, argv)])


@pytest.fixture
def files(tmp_path):
    lab = write_labels(tmp_path / "t.tif", seed=5)
    a = write_prediction(tmp_path / "a.tif", lab, seed=5)
    b = write_prediction(tmp_path / "b.npy", lab, seed=6)
    return tmp_path, lab, a, b


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_several_losses_write_one_map_each_and_their_values(files):
    d, lab, a, _ = files
    argv = ["--target", d / "t.tif", "--prediction", d / "a.tif"]
    argv += ["--loss", "bce", "--loss", "focal:gamma=1,alpha=0.5", "--loss", "dice", "-o", d / "o"]
    assert _run(*argv) == 0
    got = tifffile.imread(d / "o" / "a" / "focal_gamma-1_alpha-0.5.tif")
    np.testing.assert_allclose(got, loss_map(a, lab, "focal", gamma=1.0, alpha=0.5), rtol=1e-6)
    np.testing.assert_allclose(
        tifffile.imread(d / "o" / "a" / "dice.tif"), loss_map(a, lab, "dice"), rtol=1e-6
    )
    rows = _rows(d / "o" / "compare.csv")
    assert [r["loss"] for r in rows] == ["bce", "focal (gamma=1, alpha=0.5)", "dice"]
    assert float(rows[2]["value"]) == pytest.approx(loss_value(a, lab, "dice"), rel=1e-6)
    assert rows[0]["map"] == str(d / "o" / "a" / "bce.tif")


def test_two_models_write_maps_difference_and_per_object_changes(files):
    d, lab, a, b = files
    argv = ["--target", d / "t.tif", "--prediction", d / "a.tif", "--prediction-b", d / "b.npy"]
    argv += ["--loss", "bce", "-o", d / "o", "--csv", d / "changes.csv"]
    assert _run(*argv) == 0
    diff = tifffile.imread(d / "o" / "a" / "diff_bce.tif")
    np.testing.assert_allclose(
        diff, loss_map(a, lab, "bce") - loss_map(b, lab, "bce"), rtol=1e-5, atol=1e-6
    )
    assert (d / "o" / "a" / "A_bce.tif").is_file() and (d / "o" / "a" / "B_bce.tif").is_file()
    rows = _rows(d / "changes.csv")
    want = compare_arrays(lab, [a, b], ["bce"]).table
    assert [int(r["index"]) for r in rows] == want["index"].tolist()
    assert [r["verdict"] for r in rows] == want["verdict"].tolist()
    np.testing.assert_allclose(
        [float(r["dice_change"]) for r in rows], want["dice_change"], rtol=1e-6
    )
    assert {r["prediction_b"] for r in rows} == {str(d / "b.npy")}


def test_existing_outputs_are_refused_unless_overwrite(files, capsys):
    d, *_ = files
    argv = ["--target", d / "t.tif", "--prediction", d / "a.tif", "--loss", "bce"]
    argv += ["--loss", "mcc", "-o", d / "o"]
    assert _run(*argv) == 0
    assert _run(*argv) == 2
    assert "compare.csv: exists; pass --overwrite" in capsys.readouterr().err
    assert _run(*argv, "--overwrite") == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--loss", "bce"], "comparing losses needs 2 to 6"),
        (["--loss", "nope", "--loss", "bce"], "--loss: unknown loss 'nope'"),
        (["--loss", "focal:gama=1", "--loss", "bce"], "expected PARAM=VALUE with a parameter"),
        (["--loss", "focal:gamma=-1", "--loss", "bce"], "'gamma' of loss 'focal' must be >= 0"),
        (["--loss", "bce", "--loss", "dice", "--prediction-b", "b.npy"], "with one --loss, got 2"),
    ],
)
def test_usage_errors(files, capsys, extra, message):
    d, *_ = files
    argv = ["--target", d / "t.tif", "--prediction", d / "a.tif", "-o", d / "o", *extra]
    assert _run(*argv) == 2
    assert message in capsys.readouterr().err


def test_a_bad_file_fails_alone(files, capsys):
    d, lab, *_ = files
    tifffile.imwrite(d / "small.tif", np.zeros((4, 4), np.float32))
    write_labels(d / "t2.tif", seed=7)
    write_prediction(d / "a2.tif", lab, seed=1)
    argv = ["--target", d / "t.tif", d / "t.tif", "--prediction", d / "small.tif", d / "a2.tif"]
    argv += ["--loss", "bce", "--loss", "dice", "-o", d / "o"]
    assert _run(*argv) == 1
    assert "must have the labels' shape" in capsys.readouterr().err
    assert (d / "o" / "a2" / "bce.tif").is_file()
    assert {r["prediction"] for r in _rows(d / "o" / "compare.csv")} == {str(d / "a2.tif")}


def test_parse_loss_spec():
    assert parse_loss_spec("focal:gamma=1,alpha=None") == ("focal", {"gamma": 1.0, "alpha": None})
    assert parse_loss_spec("soft_cldice:iterations=5") == ("soft_cldice", {"iterations": 5})
    assert parse_loss_spec("bce") == ("bce", {})


def test_help_documents_every_option(capsys):
    assert main(["compare", "--help"]) == 0
    text = capsys.readouterr().out
    assert_help_documents_every_option(text, subparser("compare"))
    assert "diff_<loss>.tif" in text


def test_csv_onto_an_input_is_refused_before_anything_is_written(tmp_path):
    """--csv naming an input (here the target, with --overwrite) is refused; the input is
    untouched and no map is written."""
    rng = np.random.default_rng(0)
    target = tmp_path / "t.tif"
    pred = tmp_path / "p.tif"
    labels = np.zeros((32, 32), np.uint16)
    labels[4:12, 4:12] = 1
    tifffile.imwrite(target, labels)
    tifffile.imwrite(pred, rng.random((32, 32)).astype(np.float32))
    before = target.read_bytes()
    out = tmp_path / "out"
    code = main(
        [
            "compare",
            "--target", str(target),
            "--prediction", str(pred),
            "--loss", "bce",
            "--loss", "dice",
            "-o", str(out),
            "--csv", str(target),
            "--overwrite",
        ]
    )  # fmt: skip
    assert code == 1
    assert target.read_bytes() == before
    assert not out.exists() or not any(out.rglob("*.tif"))
