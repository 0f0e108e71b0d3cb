"""One bad file never stops a batch, on every path; no output holds NaN or inf."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

import napari_losslens.core as core
from napari_losslens.cli import main
from napari_losslens.core import loss_value, unet_weight_map

from ._helpers import write_labels, write_prediction

SHAPE = (64, 72)


def _weights(*argv):
    return main(["weights", "-q", *map(str, argv)])


def _loss(*argv):
    return main(["loss", "-q", *map(str, argv)])


def _errors(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("losslens: error:")]


def _damaged_compressed_tiff(path, labels) -> None:
    """A zlib TIFF with a valid header whose sixth strip is garbage."""
    tifffile.imwrite(path, labels, compression="zlib", rowsperstrip=8)
    with tifffile.TiffFile(path) as tf:
        offset = tf.pages[0].dataoffsets[5]
        size = tf.pages[0].databytecounts[5]
    raw = bytearray(path.read_bytes())
    raw[offset + 2 : offset + size] = b"\xff" * (size - 2)
    path.write_bytes(bytes(raw))


def _header_only_tiff(path) -> None:
    """A TIFF header pointing at an IFD with no entries: tifffile reads it as shape (0,)."""
    path.write_bytes(b"II*\x00\x08\x00\x00\x00" + b"\x00" * 8)


@pytest.mark.parametrize("argv", [[], ["--chunks", "16"]], ids=["in-memory", "chunks"])
def test_damaged_compressed_tiff_fails_alone(tmp_path, capsys, argv):
    if argv:
        pytest.importorskip("dask.array")
    good = write_labels(tmp_path / "good.tif", shape=SHAPE, n_cells=6, seed=1)
    _damaged_compressed_tiff(tmp_path / "bad.tif", good)
    more = write_labels(tmp_path / "more.npy", shape=SHAPE, n_cells=6, seed=2)
    out = tmp_path / "out"
    names = ["good.tif", "bad.tif", "more.npy"]
    assert _weights(*(tmp_path / n for n in names), "-o", out, *argv) == 1
    captured = capsys.readouterr()
    (line,) = _errors(captured.err)
    assert f"{tmp_path / 'bad.tif'}: cannot read it as a TIFF: " in line
    assert "Traceback" not in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["good.tif", "more.tif"]
    for name, lab in (("good.tif", good), ("more.tif", more)):
        np.testing.assert_allclose(tifffile.imread(out / name), unet_weight_map(lab), atol=1e-4)


def test_damaged_target_fails_its_pair_only_with_chunks(tmp_path, capsys):
    pytest.importorskip("dask.array")
    preds, targets = [], []
    for i in range(3):
        lab = write_labels(tmp_path / f"t{i}.tif", shape=SHAPE, n_cells=6, seed=10 + i)
        write_prediction(tmp_path / f"p{i}.npy", lab, seed=i)
        preds.append(tmp_path / f"p{i}.npy")
        targets.append(tmp_path / f"t{i}.tif")
    _damaged_compressed_tiff(tmp_path / "t1.tif", tifffile.imread(targets[1]))
    argv = ["--prediction", *preds, "--target", *targets, "--chunks", "16", "--csv"]
    assert _loss(*argv, "-o", tmp_path / "maps") == 1
    captured = capsys.readouterr()
    (line,) = _errors(captured.err)
    assert str(preds[1]) in line and "cannot read it as a TIFF" in line
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == ["p0.tif", "p2.tif"]
    assert captured.out.count("\n") == 3  # the header and the two good pairs


@pytest.mark.parametrize("argv", [[], ["--chunks", "16"]], ids=["in-memory", "chunks"])
def test_a_tiff_without_an_image_says_so(tmp_path, capsys, argv):
    if argv:
        pytest.importorskip("dask.array")
    _header_only_tiff(tmp_path / "empty.tif")
    (tmp_path / "text.tif").write_text("not an image")
    write_labels(tmp_path / "good.tif", seed=3)
    names = ["empty.tif", "text.tif", "good.tif"]
    assert _weights(*(tmp_path / n for n in names), "-o", tmp_path / "out", *argv) == 1
    empty, text = _errors(capsys.readouterr().err)
    assert "empty.tif: cannot read it as a TIFF: it holds no image" in empty
    assert "text.tif: cannot read it as a TIFF: not a TIFF file" in text
    assert "2D or 3D" not in empty + text
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.tif"]


def test_an_unexpected_error_deep_inside_fails_that_file_only(tmp_path, capsys, monkeypatch):
    write_labels(tmp_path / "a.tif", seed=4)
    write_labels(tmp_path / "b.tif", seed=5)
    real = core.unet_weight_map
    calls = []

    def broken_once(labels, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first call checks the parameters; the second is a.tif
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(labels, **kwargs)

    monkeypatch.setattr(core, "unet_weight_map", broken_once)
    assert _weights(tmp_path / "a.tif", tmp_path / "b.tif", "-o", tmp_path / "out") == 1
    (line,) = _errors(capsys.readouterr().err)
    assert "a.tif: RuntimeError: CUDA error: an illegal memory access" in line
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["b.tif"]


# --------------------------------------------------------------------------------------
# No NaN or inf in any output
# --------------------------------------------------------------------------------------


def test_a_huge_w0_writes_no_infinite_map(tmp_path, capsys):
    write_labels(tmp_path / "a.tif", seed=6)
    assert _weights(tmp_path / "a.tif", "-o", tmp_path / "out", "--w0", "1e39") in (1, 2)
    err = capsys.readouterr().err
    # today the map overflows float32; a core that refuses such a w0 is as good
    assert "NaN or inf" in err or "--w0" in err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [[], ["--chunks", "16"], ["--chunks", "16", "--format", "zarr"], ["--format", "zarr"]],
    ids=["tiff", "chunked-tiff", "chunked-zarr", "zarr"],
)
def test_a_non_finite_weight_map_is_never_written(tmp_path, capsys, monkeypatch, argv):
    if "--chunks" in argv:
        pytest.importorskip("dask.array")
    if "zarr" in argv:
        pytest.importorskip("zarr")
    write_labels(tmp_path / "a.tif", shape=SHAPE, n_cells=6, seed=7)
    write_labels(tmp_path / "b.tif", shape=SHAPE, n_cells=6, seed=8)
    real = core.unet_weight_map

    def one_nan(labels, **kwargs):
        w = real(labels, **kwargs)
        return w.map_blocks(_poison, dtype=w.dtype) if hasattr(w, "dask") else _poison(w)

    monkeypatch.setattr(core, "unet_weight_map", one_nan)
    out = tmp_path / "out"
    assert _weights(tmp_path / "a.tif", tmp_path / "b.tif", "-o", out, *argv) == 1
    lines = _errors(capsys.readouterr().err)
    assert len(lines) == 2 and all("holds NaN or inf values: not written" in ln for ln in lines)
    assert list(out.iterdir()) == []  # no output, no temporary file


def _poison(block):
    block = np.array(block, copy=True)
    if block.size:
        block.flat[0] = np.nan
    return block


def test_a_non_finite_loss_value_or_map_is_reported_not_written(tmp_path, capsys, monkeypatch):
    lab = write_labels(tmp_path / "t.tif", seed=9)
    write_prediction(tmp_path / "p.tif", lab)
    argv = ["--prediction", tmp_path / "p.tif", "--target", tmp_path / "t.tif"]
    argv += ["-o", tmp_path / "m.tif", "--csv"]
    monkeypatch.setattr(core, "loss_value", lambda *a, **k: float("inf"))
    assert _loss(*argv) == 1
    captured = capsys.readouterr()
    assert "the loss value is inf" in _errors(captured.err)[0]
    assert captured.out.splitlines() == ["prediction,target,loss,value,map"]
    assert not (tmp_path / "m.tif").exists()

    monkeypatch.setattr(core, "loss_value", loss_value)
    monkeypatch.setattr(core, "loss_map", lambda *a, **k: np.full(lab.shape, np.inf, np.float32))
    assert _loss(*argv) == 1
    assert "holds NaN or inf values" in _errors(capsys.readouterr().err)[0]
    assert not (tmp_path / "m.tif").exists()
