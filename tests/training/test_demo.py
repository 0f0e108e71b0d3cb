"""The training demo and its ``train-demo`` subcommand, with a few small steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_losslens._sample_data import make_touching_nuclei
from napari_losslens.cli import build_parser
from napari_losslens.training import Recording, UNet
from napari_losslens.training import demo as demo_module
from napari_losslens.training.demo import load_validation, train_demo

SMALL = {"every": 2, "crop": 32, "batch": 2, "base": 4, "validation": "synthetic"}


def test_two_losses_two_recordings(tmp_path):
    lines: list[str] = []
    results = train_demo(5, ("bce", "unet_ce"), tmp_path, log=lines.append, **SMALL)
    assert [r.loss for r in results] == ["bce", "unet_ce"]
    for r in results:
        assert r.path == tmp_path / f"{r.loss}.losslens.zarr"
        rec = Recording(r.path)
        assert rec.loss == r.loss
        assert rec.samples == ["synthetic_nuclei"]
        assert rec.steps == r.steps == [0, 2, 4, 5]  # every 2nd, and after the last
        _, image, labels = load_validation("synthetic")
        np.testing.assert_array_equal(rec.read("synthetic_nuclei", "target"), labels)
        # the printed Dice is the recorded prediction's foreground Dice
        p = rec.read("synthetic_nuclei", "prediction", -1) > 0.5
        y = labels > 0
        assert r.dice[-1] == pytest.approx(2 * (p & y).sum() / (p.sum() + y.sum()))
    text = "\n".join(lines)
    assert "validation Dice" in text
    assert 'viewer.open("' in text and 'plugin="napari-losslens"' in text


def test_the_same_start_for_every_loss(tmp_path):
    """Both losses start from the same weights: their step-0 predictions are identical."""
    results = train_demo(1, ("bce", "dice"), tmp_path, log=None, **SMALL)
    first = [Recording(r.path).read("synthetic_nuclei", "prediction", 0) for r in results]
    np.testing.assert_allclose(first[0], first[1], rtol=1e-6)


def test_existing_recording_refused_then_overwritten(tmp_path):
    train_demo(1, ("bce",), tmp_path, log=None, **SMALL)
    with pytest.raises(ValueError, match=r"recording\(s\) exist: .*bce.losslens.zarr"):
        train_demo(1, ("bce",), tmp_path, log=None, **SMALL)
    train_demo(3, ("bce",), tmp_path, log=None, overwrite=True, **SMALL)
    assert Recording(tmp_path / "bce.losslens.zarr").steps == [0, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "steps must be an integer >= 1, got 0"),
        ({"crop": 30}, r"crop must be a multiple of 4 in \[16, 256\], got 30"),
        ({"losses": ()}, "losses must name at least one loss"),
        ({"losses": ("nope",)}, "unknown loss 'nope'"),
        ({"validation": "mine"}, "validation must be 'auto', 'dsb' or 'synthetic'"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        train_demo(**{"out": tmp_path, "log": None, **kwargs})


def test_the_model_learns(tmp_path):
    """A few dozen steps raise the validation Dice well above the untrained model's."""
    results = train_demo(
        40, ("unet_ce",), tmp_path, log=None, every=40, crop=64, batch=4, base=8,
        validation="synthetic",
    )  # fmt: skip
    first, last = results[0].dice[0], results[0].dice[-1]
    assert last > 0.7 and last > first + 0.2


def test_unet_shapes_and_errors():
    net = UNet(base=4, depth=2)
    assert net(torch.zeros(1, 1, 16, 24)).shape == (1, 1, 16, 24)
    with pytest.raises(ValueError, match=r"multiples of 4 \(2\*\*depth\), got \(18, 24\)"):
        net(torch.zeros(1, 1, 18, 24))
    with pytest.raises(ValueError, match=r"input must have shape \(N, 1, H, W\), got \(16, 16\)"):
        net(torch.zeros(16, 16))
    with pytest.raises(ValueError, match="depth must be an integer >= 1, got 0"):
        UNet(depth=0)


def test_synthetic_validation_is_not_a_training_image():
    name, image, labels = load_validation("synthetic")
    assert name == "synthetic_nuclei"
    assert 0.0 <= image.min() and image.max() <= 1.0
    for seed in (1, 2, 3, 4):  # the training seeds
        assert not np.array_equal(make_touching_nuclei((256, 256), seed=seed)[1], labels)


def _parse(argv):
    return build_parser().parse_args(argv)


def test_cli_subcommand(tmp_path, capsys, monkeypatch):
    seen = {}

    def fake_train_demo(**kwargs):
        seen.update(kwargs)
        return []

    args = _parse(
        ["train-demo", "--steps", "7", "--loss", "bce", "--loss", "dice", "--out", str(tmp_path)]
    )
    assert args.subparser.prog.endswith("train-demo")
    monkeypatch.setattr(demo_module, "train_demo", fake_train_demo)
    assert args.run(args, args.subparser) == 0
    assert seen["steps"] == 7 and seen["losses"] == ("bce", "dice") and seen["out"] == tmp_path
    assert _parse(["train-demo"]).losses is None  # the default loss is unet_ce


def test_cli_runs_and_reports_errors(tmp_path, capsys):
    args = _parse(["train-demo", "--steps", "0", "--out", str(tmp_path)])
    assert args.run(args, args.subparser) == 1
    assert "train-demo: error: steps must be an integer >= 1, got 0" in capsys.readouterr().err
