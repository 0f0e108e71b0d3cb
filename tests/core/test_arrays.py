"""Device resolution and the kind-in, kind-out contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_losslens.core._arrays import resolve_device, validate_labels, validate_spacing


def test_none_follows_the_tensor_then_cuda_then_cpu():
    assert resolve_device(None, torch.zeros(1)) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None, np.zeros(1)).type == expected
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize(
    ("device", "error"), [("gpu0", ValueError), (3, TypeError), ("mps", ValueError)]
)
def test_bad_devices(device, error):
    with pytest.raises(error, match="device"):
        resolve_device(device)


@pytest.mark.parametrize(
    "dtype",
    [
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        bool,
        np.float32,
        np.float64,
        ">i4",
    ],
)
def test_label_dtypes_accepted(dtype):
    lab = np.array([[0, 1], [1, 0]]).astype(dtype)
    out = validate_labels(lab, torch.device("cpu"))
    assert out.dtype == torch.int64 and out.tolist() == [[0, 1], [1, 0]]


def test_uint64_beyond_int64_is_refused():
    with pytest.raises(ValueError, match="fit in int64"):
        validate_labels(np.array([[0, 2**64 - 1]], np.uint64), torch.device("cpu"))


def test_spacing_scalar_broadcasts():
    assert validate_spacing(2, 3) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError, match="spacing must be numbers"):
        validate_spacing(("a", 1), 2)


@pytest.mark.parametrize(
    ("dtype", "want", "shared"),
    [
        (np.int32, torch.int32, True),
        (np.int64, torch.int64, True),
        (np.uint16, torch.int32, False),
        (np.uint8, torch.int32, False),
        (bool, torch.int32, False),
        (np.uint32, torch.int32, False),
        (np.float32, torch.int64, False),
    ],
)
def test_int32_ok_keeps_the_kernels_dtypes_without_a_copy(dtype, want, shared):
    lab = np.array([[0, 1], [1, 0]]).astype(dtype)
    out = validate_labels(lab, torch.device("cpu"), int32_ok=True)
    assert out.dtype == want and out.tolist() == [[0, 1], [1, 0]]
    assert np.shares_memory(out.numpy(), lab) == shared


def test_int32_ok_widens_large_uint32_and_still_refuses_negative_ids():
    big = np.array([[0, 2**32 - 1]], np.uint32)
    out = validate_labels(big, torch.device("cpu"), int32_ok=True)
    assert out.dtype == torch.int64 and out.tolist() == [[0, 2**32 - 1]]
    with pytest.raises(ValueError, match=r"non-negative ids .* minimum of -3"):
        validate_labels(np.array([[0, -3]], np.int32), torch.device("cpu"), int32_ok=True)
    with pytest.raises(ValueError, match=r"non-negative ids .* minimum of -2"):
        validate_labels(
            torch.tensor([[0, -2]], dtype=torch.int16), torch.device("cpu"), int32_ok=True
        )
