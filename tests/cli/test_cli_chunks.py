"""``--chunks``, ``--workers``, ``--scheduler``, ``--format`` and ``--skip-existing``: lazy
reading, chunk-by-chunk outputs equal to the in-memory results."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tifffile

from napari_losslens.cli import main
from napari_losslens.core import loss_map, loss_value, unet_weight_map

from ._helpers import write_labels, write_prediction

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")

# chunks of 32 pixels cut through cells of radius 9 (and are smaller than the halo of
# w0=10, sigma=5, so dask merges some: the output must not care)
SHAPE = (100, 120)


def _weights(*argv):
    return main(["weights", "-q", *map(str, argv)])


def _loss(*argv):
    return main(["loss", "-q", *map(str, argv)])


def _assert_same(got, want, w0=10.0):
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * w0)


def _is_tiled(path) -> bool:
    with tifffile.TiffFile(path) as tf:
        return all(page.is_tiled for page in tf.pages)


def test_weights_chunked_tiff_and_npy_equal_in_memory(tmp_path, capsys):
    a = write_labels(tmp_path / "a.npy", shape=SHAPE, n_cells=20, seed=1)
    b = touching = write_labels(tmp_path / "b.tif", shape=SHAPE, n_cells=20, seed=2)
    tifffile.imwrite(tmp_path / "c.tif", touching, compression="zlib")  # not memory-mappable
    vol = write_labels(tmp_path / "v.tif", shape=(6, 40, 50), n_cells=8, radius=6, seed=3)
    out = tmp_path / "out"
    inputs = [tmp_path / n for n in ("a.npy", "b.tif", "c.tif", "v.tif")]
    assert _weights(*inputs, "-o", out, "--chunks", "32", "--spacing", "1") == 0
    assert "chunks=32, threads" in capsys.readouterr().out
    for name, lab in (("a.tif", a), ("b.tif", b), ("c.tif", b), ("v.tif", vol)):
        assert _is_tiled(out / name), name
        _assert_same(tifffile.imread(out / name), unet_weight_map(lab, device="cpu"))


def test_weights_chunked_per_axis_balanced_to_zarr(tmp_path):
    vol = write_labels(tmp_path / "v.npy", shape=(8, 40, 50), n_cells=8, radius=6, seed=4)
    out = tmp_path / "out"
    argv = ["--chunks", "3,17,33", "--spacing", "2,1,1", "--class-weights", "balanced"]
    assert _weights(tmp_path / "v.npy", "-o", out, "--format", "zarr", *argv) == 0
    got = zarr.open_array(str(out / "v.zarr"), mode="r")
    want = unet_weight_map(vol, spacing=(2, 1, 1), class_weights="balanced", device="cpu")
    _assert_same(got[...], want)
    assert [p.name for p in out.iterdir()] == ["v.zarr"]  # no temporary folder left


def test_zarr_input_gives_zarr_output_with_and_without_chunks(tmp_path):
    lab = write_labels(tmp_path / "x.npy", shape=SHAPE, n_cells=20, seed=5)
    da.from_array(lab, chunks=40).to_zarr(str(tmp_path / "lab.zarr"))
    want = unet_weight_map(lab, device="cpu")
    for argv, out in (((), tmp_path / "o1"), (("--chunks", "64"), tmp_path / "o2")):
        assert _weights(tmp_path / "lab.zarr", "-o", out, *argv) == 0
        _assert_same(zarr.open_array(str(out / "lab.zarr"), mode="r")[...], want)
    # and to TIFF on request
    assert _weights(tmp_path / "lab.zarr", "-o", tmp_path / "o3", "--format", "tif") == 0
    _assert_same(tifffile.imread(tmp_path / "o3" / "lab.tif"), want)


def test_zarr_output_refused_then_replaced_with_overwrite(tmp_path, capsys):
    lab = write_labels(tmp_path / "a.tif", shape=SHAPE, seed=6)
    out = tmp_path / "out"
    (out / "a.zarr").mkdir(parents=True)
    (out / "a.zarr" / "old").write_text("x")
    argv = [tmp_path / "a.tif", "-o", out, "--format", "zarr", "--chunks", "50"]
    assert _weights(*argv) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert (out / "a.zarr" / "old").exists()
    assert _weights(*argv, "--overwrite") == 0
    _assert_same(zarr.open_array(str(out / "a.zarr"), mode="r")[...], unet_weight_map(lab))
    assert not (out / "a.zarr" / "old").exists()
    assert [p.name for p in out.iterdir()] == ["a.zarr"]


def test_chunks_with_the_wrong_number_of_axes_fail_that_file(tmp_path, capsys):
    write_labels(tmp_path / "a.tif", shape=SHAPE, seed=7)
    vol = write_labels(tmp_path / "v.tif", shape=(5, 30, 30), n_cells=4, radius=6, seed=8)
    out = tmp_path / "out"
    assert _weights(tmp_path / "a.tif", tmp_path / "v.tif", "-o", out, "--chunks", "2,16,16") == 1
    err = capsys.readouterr().err
    assert "a.tif: --chunks 2,16,16 has 3 values for an image of 2 axes" in err
    assert [p.name for p in out.iterdir()] == ["v.tif"]
    _assert_same(tifffile.imread(out / "v.tif"), unet_weight_map(vol))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--chunks", "0"], "expected a positive number"),
        (["--chunks", "a,b"], "expected a positive number"),
        (["--workers", "2"], "--workers needs --chunks"),
        (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --chunks"),
        (["--chunks", "8", "--workers", "2", "--scheduler", "x"], "exclude each other"),
        (["--overwrite", "--skip-existing"], "not allowed with argument"),
    ],
)
def test_usage_errors(tmp_path, capsys, argv, message):
    write_labels(tmp_path / "a.tif", shape=(20, 20), n_cells=2, seed=9)
    assert _weights(tmp_path / "a.tif", "-o", tmp_path / "out", *argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_missing_distributed_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    write_labels(tmp_path / "a.tif", shape=(20, 20), n_cells=2, seed=10)
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    argv = ["--chunks", "8", "--workers", "2"]
    assert _weights(tmp_path / "a.tif", "-o", tmp_path / "out", *argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--workers needs dask.distributed" in err and "napari-losslens[distributed]" in err


def test_workers_run_on_a_local_cluster(tmp_path, capsys):
    pytest.importorskip("distributed")
    lab = write_labels(tmp_path / "a.npy", shape=(60, 70), n_cells=10, seed=11)
    out = tmp_path / "out"
    argv = ["--chunks", "32", "--workers", "2", "--format", "zarr", "--device", "cpu"]
    assert _weights(tmp_path / "a.npy", "-o", out, *argv) == 0
    assert "2 local worker(s)" in capsys.readouterr().out
    _assert_same(zarr.open_array(str(out / "a.zarr"), mode="r")[...], unet_weight_map(lab))


def test_weights_skip_existing_does_the_rest(tmp_path, capsys):
    a = write_labels(tmp_path / "a.tif", shape=(30, 30), n_cells=3, seed=12)
    b = write_labels(tmp_path / "b.tif", shape=(30, 30), n_cells=3, seed=13)
    out = tmp_path / "out"
    out.mkdir()
    tifffile.imwrite(out / "a.tif", np.zeros((2, 2), np.float32))
    assert _weights(tmp_path / "a.tif", tmp_path / "b.tif", "-o", out, "--skip-existing") == 0
    assert "1 weight map(s) written" in capsys.readouterr().out
    assert tifffile.imread(out / "a.tif").shape == (2, 2)  # left alone
    np.testing.assert_array_equal(tifffile.imread(out / "b.tif"), unet_weight_map(b))
    del a


@pytest.mark.parametrize("loss", ["bce", "dice"])
def test_loss_chunked_equals_in_memory(tmp_path, capsys, loss):
    lab = write_labels(tmp_path / "t.tif", shape=SHAPE, n_cells=20, seed=14)
    pred = write_prediction(tmp_path / "p.npy", lab, seed=15)
    mask = np.zeros(SHAPE, np.uint8)
    mask[10:90, 5:100] = 1
    np.save(tmp_path / "m.npy", mask)
    argv = ["--prediction", tmp_path / "p.npy", "--target", tmp_path / "t.tif"]
    argv += ["--mask", tmp_path / "m.npy", "--loss", loss, "--chunks", "32"]
    assert _loss(*argv, "-o", tmp_path / "map.zarr") == 0
    value = float(capsys.readouterr().out)
    m = mask != 0
    assert value == pytest.approx(loss_value(pred, lab, loss, mask=m), rel=1e-5, abs=1e-7)
    want = loss_map(pred, lab, loss, mask=m)
    got = zarr.open_array(str(tmp_path / "map.zarr"), mode="r")[...]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert _loss(*argv, "-o", tmp_path / "map.tif") == 0
    assert _is_tiled(tmp_path / "map.tif")
    np.testing.assert_allclose(tifffile.imread(tmp_path / "map.tif"), want, rtol=1e-5, atol=1e-7)


def test_loss_chunked_refuses_whole_image_losses_per_pair(tmp_path, capsys):
    lab = write_labels(tmp_path / "t.tif", shape=(40, 40), n_cells=4, seed=16)
    write_prediction(tmp_path / "p.tif", lab)
    argv = ["--prediction", tmp_path / "p.tif", "--target", tmp_path / "t.tif"]
    assert _loss(*argv, "--loss", "boundary", "--chunks", "16") == 1
    assert "cannot be computed blockwise" in capsys.readouterr().err


def test_loss_skip_existing_merges_the_csv(tmp_path, capsys):
    preds, targets = [], []
    for i in range(3):
        lab = write_labels(tmp_path / f"t{i}.tif", shape=(30, 30), n_cells=3, seed=20 + i)
        write_prediction(tmp_path / f"p{i}.tif", lab, seed=i)
        preds.append(tmp_path / f"p{i}.tif")
        targets.append(tmp_path / f"t{i}.tif")
    maps, table = tmp_path / "maps", tmp_path / "scores.csv"
    maps.mkdir()
    # a first run that did only the first pair
    first = ["--prediction", preds[0], "--target", targets[0], "-o", maps / "p0.tif"]
    assert _loss(*first, "--csv", table) == 0
    full = ["--prediction", *preds, "--target", *targets, "-o", maps, "--csv", table]
    assert _loss(*full) == 2  # the CSV exists: refused without --skip-existing
    assert _loss(*full, "--skip-existing") == 0
    err = capsys.readouterr().err
    assert "2 pair(s) scored with 'bce', 1 skipped (existing), 0 failed" in err
    lines = table.read_text().splitlines()
    assert lines[0] == "prediction,target,loss,value,map"
    assert [line.split(",")[0] for line in lines[1:]] == [str(p) for p in preds]
    assert sorted(p.name for p in maps.iterdir()) == ["p0.tif", "p1.tif", "p2.tif"]


def test_loss_skip_existing_needs_output(tmp_path, capsys):
    lab = write_labels(tmp_path / "t.tif", shape=(20, 20), n_cells=2, seed=30)
    write_prediction(tmp_path / "p.tif", lab)
    argv = ["--prediction", tmp_path / "p.tif", "--target", tmp_path / "t.tif"]
    assert _loss(*argv, "--skip-existing") == 2
    assert "--skip-existing needs -o" in capsys.readouterr().err
