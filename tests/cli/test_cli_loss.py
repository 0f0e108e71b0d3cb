"""``losslens loss``: loss values, tables and loss maps for files, equal to the core's."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import tifffile

from napari_losslens.cli import main
from napari_losslens.core import available_losses, loss_map, loss_value, unet_weight_map

from ._helpers import (
    assert_help_documents_every_option,
    subparser,
    write_labels,
    write_prediction,
)


def _run(*argv):
    return main(["loss", "-q", *map(str, argv)])


@pytest.fixture
def pair(tmp_path):
    lab = write_labels(tmp_path / "t.tif", seed=5)
    pred = write_prediction(tmp_path / "p.tif", lab, seed=5)
    return tmp_path / "p.tif", tmp_path / "t.tif", pred, lab


def test_one_pair_prints_the_value_and_writes_the_map(pair, tmp_path, capsys):
    p, t, pred, lab = pair
    assert _run("--prediction", p, "--target", t, "--loss", "bce", "-o", tmp_path / "m.tif") == 0
    out = capsys.readouterr().out.strip()
    assert float(out) == pytest.approx(loss_value(pred, lab, "bce"), rel=1e-7)
    got = tifffile.imread(tmp_path / "m.tif")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, loss_map(pred, lab, "bce"))


@pytest.mark.parametrize("name", list(available_losses()))
def test_every_registered_loss_with_defaults(pair, tmp_path, capsys, name):
    p, t, pred, lab = pair
    assert _run("--prediction", p, "--target", t, "--loss", name, "-o", tmp_path / "m.tif") == 0
    value = float(capsys.readouterr().out.strip())
    assert value == pytest.approx(loss_value(pred, lab, name), rel=1e-6, abs=1e-9)
    np.testing.assert_allclose(
        tifffile.imread(tmp_path / "m.tif"), loss_map(pred, lab, name), rtol=1e-6, atol=1e-9
    )


def test_params_from_logits_and_mask(tmp_path, capsys):
    lab = write_labels(tmp_path / "t.npy", seed=6)
    rng = np.random.default_rng(6)
    logits = (rng.normal(size=lab.shape) * 3).astype(np.float32)
    np.save(tmp_path / "logits.npy", logits)
    mask = np.zeros(lab.shape, np.uint8)
    mask[5:-5, 3:-3] = 255  # non-zero means counted
    tifffile.imwrite(tmp_path / "mask.tif", mask)
    argv = ["--prediction", tmp_path / "logits.npy", "--target", tmp_path / "t.npy"]
    argv += ["--loss", "weighted_bce", "--param", "beta=3", "--from-logits"]
    argv += ["--mask", tmp_path / "mask.tif", "-o", tmp_path / "m.tif"]
    assert _run(*argv) == 0
    kw = dict(from_logits=True, mask=mask > 0, beta=3.0)
    value = float(capsys.readouterr().out)
    assert value == pytest.approx(loss_value(logits, lab, "weighted_bce", **kw), rel=1e-7)
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "m.tif"), loss_map(logits, lab, "weighted_bce", **kw)
    )


def test_weight_map_from_losslens_weights_composes(pair, tmp_path, capsys):
    p, t, pred, lab = pair
    assert main(["weights", "-q", str(t), "-o", str(tmp_path / "w"), "--sigma", "3"]) == 0
    capsys.readouterr()
    argv = ["--prediction", p, "--target", t, "--loss", "unet_ce"]
    assert _run(*argv, "--param", f"weight_map={tmp_path / 'w' / 't.tif'}") == 0
    value = float(capsys.readouterr().out)
    w = unet_weight_map(lab, sigma=3)
    assert value == pytest.approx(loss_value(pred, lab, "unet_ce", weight_map=w), rel=1e-7)
    assert value == pytest.approx(loss_value(pred, lab, "unet_ce", sigma=3), rel=1e-6)
    # the same through the loss's own parameters, of every kind
    argv += ["--param", "sigma=3", "--param", "class_weights=0.5,2"]
    argv += ["--param", "background_only=false", "--param", "spacing=1,1"]
    assert _run(*argv) == 0
    value = float(capsys.readouterr().out)
    kw = dict(sigma=3, class_weights=(0.5, 2), background_only=False, spacing=(1, 1))
    assert value == pytest.approx(loss_value(pred, lab, "unet_ce", **kw), rel=1e-7)


def _pairs(tmp_path, n):
    preds, targets, arrays = [], [], []
    for i in range(n):
        lab = write_labels(tmp_path / f"t{i}.tif", seed=10 + i)
        pred = write_prediction(tmp_path / f"p{i}.tif", lab, seed=10 + i)
        preds.append(tmp_path / f"p{i}.tif")
        targets.append(tmp_path / f"t{i}.tif")
        arrays.append((pred, lab))
    return preds, targets, arrays


def test_several_pairs_print_a_table_and_write_maps_into_a_folder(tmp_path, capsys):
    preds, targets, arrays = _pairs(tmp_path, 3)
    # lists and repeated options mix
    argv = ["--prediction", preds[0], preds[1], "--prediction", preds[2]]
    argv += ["--target", *targets, "--loss", "dice", "-o", tmp_path / "maps"]
    assert _run(*argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["prediction", "target", "loss", "value", "map"]
    assert len(lines) == 4
    for line, (pred, lab), p in zip(lines[1:], arrays, preds, strict=True):
        cells = line.split()
        assert cells[0] == str(p)
        assert float(cells[3]) == pytest.approx(loss_value(pred, lab, "dice"), rel=1e-7)
        np.testing.assert_array_equal(
            tifffile.imread(tmp_path / "maps" / p.name), loss_map(pred, lab, "dice")
        )


def test_csv_to_stdout_and_to_a_file(tmp_path, capsys):
    preds, targets, arrays = _pairs(tmp_path, 2)
    argv = ["--prediction", *preds, "--target", *targets, "--loss", "bce"]
    assert _run(*argv, "--csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["prediction"] for r in rows] == [str(p) for p in preds]
    for row, (pred, lab) in zip(rows, arrays, strict=True):
        assert row["loss"] == "bce"
        assert float(row["value"]) == pytest.approx(loss_value(pred, lab, "bce"), rel=1e-7)
    assert _run(*argv, "--csv", tmp_path / "scores.csv") == 0
    assert capsys.readouterr().out == ""
    with open(tmp_path / "scores.csv", newline="") as fh:
        assert list(csv.DictReader(fh)) == rows
    assert _run(*argv, "--csv", tmp_path / "scores.csv") == 2  # exists: refused
    assert "--overwrite" in capsys.readouterr().err


def test_a_bad_pair_among_good_ones(tmp_path, capsys):
    preds, targets, _ = _pairs(tmp_path, 3)
    (tmp_path / "t1.tif").write_bytes(b"corrupt")
    np.save(tmp_path / "p2.npy", np.full((4, 4), 2.0, np.float32))  # not probabilities
    preds[2] = tmp_path / "p2.npy"
    np.save(tmp_path / "t2.npy", np.zeros((4, 4), np.uint8))
    targets[2] = tmp_path / "t2.npy"
    argv = ["--prediction", *preds, "--target", *targets, "--csv", "-o", tmp_path / "maps"]
    assert _run(*argv) == 1
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert [r["prediction"] for r in rows] == [str(preds[0])]
    errors = [ln for ln in captured.err.splitlines() if ln.startswith("losslens: error:")]
    assert len(errors) == 2
    assert "t1.tif" in errors[0] and "TIFF" in errors[0]
    assert "p2.npy" in errors[1] and "probabilities" in errors[1]
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["p0.tif"]


def test_existing_map_is_refused_without_overwrite(pair, tmp_path, capsys):
    p, t, pred, lab = pair
    tifffile.imwrite(tmp_path / "m.tif", np.ones((2, 2), np.float32))
    argv = ["--prediction", p, "--target", t, "-o", tmp_path / "m.tif"]
    assert _run(*argv) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert tifffile.imread(tmp_path / "m.tif").shape == (2, 2)
    assert _run(*argv, "--overwrite") == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "m.tif"), loss_map(pred, lab))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--loss", "nope"], "unknown loss"),
        (["--loss", "weighted_bce", "--param", "gamma=2"], "no parameter 'gamma'"),
        (["--loss", "weighted_bce", "--param", "beta=-1"], ">= 0"),
        (["--loss", "weighted_bce", "--param", "beta=abc"], "beta=abc"),
        (["--loss", "weighted_bce", "--param", "beta"], "NAME=VALUE"),
        (["--loss", "unet_ce", "--param", "background_only=maybe"], "true or false"),
        (["--loss", "unet_ce", "--param", "weight_map=missing.tif"], "no such file"),
        (["--target", "extra.tif"], "one target per prediction"),
        (["--device", "cuda:99"], "not available"),
    ],
)
def test_usage_errors_exit_2(pair, tmp_path, capsys, extra, message):
    p, t, _, _ = pair
    assert _run("--prediction", p, "--target", t, "-o", tmp_path / "m.tif", *extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "m.tif").exists()


def test_several_pairs_need_a_folder_for_maps(tmp_path, capsys):
    preds, targets, _ = _pairs(tmp_path, 2)
    argv = ["--prediction", *preds, "--target", *targets, "-o", tmp_path / "m.tif"]
    assert _run(*argv) == 2
    assert "must be a folder" in capsys.readouterr().err


def test_help_lists_every_option_and_every_loss(capsys):
    assert main(["loss", "--help"]) == 0
    text = capsys.readouterr().out
    assert_help_documents_every_option(text, subparser("loss"))
    for name, info in available_losses().items():
        assert f"  {name}: " in text
        for param in info.params:
            assert f"{param.name}={param.default!r}" in text
