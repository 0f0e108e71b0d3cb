"""The npe2 reader opens a training recording as layers with a step axis, lazily."""

from __future__ import annotations

import dask.array as da
import npe2
import numpy as np
import pytest

from napari_losslens._reader import RECORDING, get_reader, read_recording, refresh_recordings
from napari_losslens.core import error_map, loss_map
from napari_losslens.training import LossRecorder, Recording


def _blobs(shape=(48, 64)):
    target = np.zeros(shape, np.int32)
    target[5:20, 6:22] = 1
    target[25:40, 30:50] = 2
    image = (target > 0).astype(np.float32) * 0.8 + 0.1
    return image, target


def _prediction(target, step):
    """Probabilities that sharpen with the step (a model that learns)."""
    y = (target > 0).astype(np.float32)
    return (0.5 + (y - 0.5) * min(0.9, 0.2 * (step + 1))).astype(np.float32)


def _record(path, steps, names=("cells", "more_cells"), **kw):
    image, target = _blobs()
    batch_t = np.stack([target, np.where(target == 2, 0, target)])
    batch_i = np.stack([image, image[::-1].copy()])
    with LossRecorder(
        path, loss="unet_ce", outputs=("loss_map", "error_map", "weight_map"), names=names, **kw
    ) as rec:
        for step in steps:
            pred = np.stack([_prediction(t, step) for t in batch_t])
            rec.record(step, batch_i, pred, batch_t)
    return batch_i, batch_t


def test_manifest_declares_the_reader():
    manifest = npe2.PluginManifest.from_distribution("napari-losslens")
    (reader,) = manifest.contributions.readers
    assert reader.filename_patterns == ["*.losslens.zarr"]
    assert reader.accepts_directories


def test_get_reader_only_for_recordings(tmp_path):
    (tmp_path / "plain.zarr").mkdir()
    (tmp_path / "file.losslens.zarr.txt").write_text("x")
    assert get_reader(str(tmp_path / "plain.zarr")) is None
    assert get_reader(str(tmp_path / "file.losslens.zarr.txt")) is None
    assert get_reader(str(tmp_path / "missing.losslens.zarr")) is None
    path = tmp_path / "run.losslens.zarr"
    _record(path, [0])
    assert get_reader(str(path)) is read_recording
    assert get_reader(str(path) + "/") is read_recording


def test_viewer_open_adds_layers_with_a_step_axis(make_napari_viewer, tmp_path):
    path = tmp_path / "run.losslens.zarr"
    images, targets = _record(path, [0, 5, 10])
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-losslens")
    names = [layer.name for layer in layers]
    for sample in ("cells", "more_cells"):
        for suffix in ("image", "target", "weight_map", "prediction", "loss_map", "error_map"):
            assert f"{sample} {suffix}" in names
    pred = viewer.layers["cells prediction"]
    lm = viewer.layers["cells loss_map"]
    errors = viewer.layers["cells error_map"]
    assert viewer.layers["cells target"].__class__.__name__ == "Labels"
    assert errors.__class__.__name__ == "Labels"
    # a leading step axis of the recorded length; lazy (dask), not loaded
    assert pred.data.shape == lm.data.shape == (3, 48, 64)
    assert isinstance(lm.data, da.Array)
    assert lm.metadata[RECORDING]["steps"] == [0, 5, 10]
    assert pred.axis_labels[0] == "step"
    # aligned: the 2D image and target broadcast over the step slider
    assert viewer.dims.ndim == 3
    np.testing.assert_array_equal(viewer.layers["more_cells image"].data, images[1])
    np.testing.assert_array_equal(viewer.layers["cells target"].data, targets[0])
    # the data at a step is the core's map of that step's prediction
    p5 = _prediction(targets[0], 5)
    np.testing.assert_allclose(pred.data[1].compute(), p5)
    np.testing.assert_allclose(
        lm.data[1].compute(), loss_map(p5, targets[0], "unet_ce"), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(
        errors.data[2].compute(), error_map(targets[0], _prediction(targets[0], 10))
    )
    # the slider moves through training time
    viewer.dims.set_current_step(0, 2)
    assert viewer.dims.current_step[0] == 2


def test_refresh_shows_new_steps(make_napari_viewer, tmp_path):
    path = tmp_path / "run.losslens.zarr"
    _, targets = _record(path, [0, 1])
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-losslens")
    assert viewer.layers["cells loss_map"].data.shape[0] == 2
    _record(path, [2, 3, 4])  # training goes on (same settings: appended)
    assert viewer.layers["cells loss_map"].data.shape[0] == 2  # until refreshed
    assert refresh_recordings(viewer) == {str(path): 5}
    lm = viewer.layers["cells loss_map"]
    assert lm.data.shape[0] == 5
    assert lm.metadata[RECORDING]["steps"] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(
        lm.data[4].compute(),
        loss_map(_prediction(targets[0], 4), targets[0], "unet_ce"),
        rtol=1e-5,
        atol=1e-6,
    )
    assert viewer.layers["cells image"].data.ndim == 2  # static layers keep no step axis


def test_open_while_writing_sees_committed_steps(make_napari_viewer, tmp_path):
    path = tmp_path / "run.losslens.zarr"
    image, target = _blobs()
    rec = LossRecorder(path, loss="bce", background=False)
    for step in range(3):
        rec.record(step, image, _prediction(target, step), target)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-losslens")
    assert viewer.layers["sample_0 loss_map"].data.shape[0] == 3
    rec.record(3, image, _prediction(target, 3), target)
    rec.close()
    assert Recording(path).steps == [0, 1, 2, 3]


def test_reader_refuses_an_empty_recording(tmp_path):
    path = tmp_path / "run.losslens.zarr"
    LossRecorder(path, loss="bce").close()
    with pytest.raises(ValueError, match="no recorded step yet"):
        read_recording(str(path))
