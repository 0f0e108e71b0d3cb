"""A small U-Net in plain PyTorch, for the training demo and for tests.

The architecture of Ronneberger et al. 2015 ("U-Net: Convolutional Networks for Biomedical
Image Segmentation", MICCAI 2015), scaled down: ``depth`` poolings instead of four,
``base`` feature maps at the top level instead of 64, padded 3×3 convolutions (so the
output has the input's size) and batch normalisation after each convolution. It returns
logits, one channel per class (one for binary segmentation).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["UNet"]


def _block(c_in: int, c_out: int) -> nn.Sequential:
    """Two padded 3×3 convolutions, each followed by batch normalisation and ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """A 2D U-Net: a contracting path, an expanding path and skip connections.

    Level k (0 = top) has ``base * 2**k`` feature maps; each of the ``depth`` levels below
    the top halves the size (2×2 max pooling) and is brought back up by a 2×2 transposed
    convolution whose output is concatenated with the skip connection of the same level.

    Reference: Ronneberger, Fischer, Brox, MICCAI 2015, Fig. 1 (with padded convolutions).

    Args:
        in_channels: channels of the input image (1 for grey).
        out_channels: channels of the output logits (1 for binary segmentation).
        base: feature maps at the top level.
        depth: number of poolings; the input's height and width must be multiples of
            ``2**depth``.

    Raises:
        ValueError: a non-positive size, or (in ``forward``) an input that is not
            ``(N, in_channels, H, W)`` with H and W multiples of ``2**depth``.

    Example:
        >>> net = UNet(base=4, depth=2)
        >>> net(torch.zeros(2, 1, 32, 32)).shape
        torch.Size([2, 1, 32, 32])
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 1, *, base: int = 16, depth: int = 2
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("base", base),
            ("depth", depth),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        self.in_channels = in_channels
        self.depth = depth
        widths = [base * 2**k for k in range(depth + 1)]
        self.down = nn.ModuleList(
            [_block(in_channels, widths[0])]
            + [_block(widths[k - 1], widths[k]) for k in range(1, depth + 1)]
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(
            [
                nn.ConvTranspose2d(widths[k], widths[k - 1], 2, stride=2)
                for k in range(depth, 0, -1)
            ]
        )
        self.merge = nn.ModuleList(
            [_block(2 * widths[k - 1], widths[k - 1]) for k in range(depth, 0, -1)]
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape ``(N, out_channels, H, W)`` for ``x`` of shape ``(N, C, H, W)``."""
        multiple = 2**self.depth
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"input must have shape (N, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        if x.shape[2] % multiple or x.shape[3] % multiple:
            raise ValueError(
                f"height and width must be multiples of {multiple} (2**depth), "
                f"got {tuple(x.shape[2:])}"
            )
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)
