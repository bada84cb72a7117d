"""Bilinear resizing of image batches with half-pixel centres.

This is the interpolation of the paper's ``P``: OpenCV's ``INTER_LINEAR`` (sample ``x_out`` reads the input at
``(x_out + 0.5) * in / out - 0.5``, clamped at the borders), the same as ONNX ``Resize`` (linear, half_pixel)
and torch ``interpolate(mode="bilinear", align_corners=False)`` without antialiasing.
"""

from __future__ import annotations

import cv2
import numpy as np

# OpenCV 5 resizes at most this many channels in one call.
_MAX_CHANNELS = 128


def resize_bilinear(x: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """Resize every image of a batch to ``size``.

    Args:
        x: ``(B, h, w)`` or ``(B, h, w, C)`` float32 array.
        size: ``(H, W)`` of the result.
        out: optional C-contiguous float32 array of the result's shape to write into.

    Returns:
        ``(B, H, W)`` or ``(B, H, W, C)`` float32 array (``out`` when given).
    """
    if x.ndim not in (3, 4):
        raise ValueError(f"expected a (B, h, w) or (B, h, w, C) batch, got shape {x.shape}")
    height, width = int(size[0]), int(size[1])
    x = np.asarray(x, dtype=np.float32)
    shape = (x.shape[0], height, width) + x.shape[3:]
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}")
    if x.shape[1:3] == (height, width):
        out[...] = x
        return out
    channels = x.shape[3] if x.ndim == 4 else 1
    for b in range(x.shape[0]):
        # One call per image writes straight into the batch: no transposes of the full-size result.
        if channels <= _MAX_CHANNELS:
            cv2.resize(np.ascontiguousarray(x[b]), (width, height), dst=out[b], interpolation=cv2.INTER_LINEAR)
        else:
            for c in range(0, channels, _MAX_CHANNELS):
                part = np.ascontiguousarray(x[b, :, :, c : c + _MAX_CHANNELS])
                out[b, :, :, c : c + _MAX_CHANNELS] = cv2.resize(part, (width, height), interpolation=cv2.INTER_LINEAR)
    return out


def resize_image(x: np.ndarray, size: tuple[int, int], out: np.ndarray | None = None) -> np.ndarray:
    """:func:`resize_bilinear` of one ``(h, w)`` or ``(h, w, C)`` float32 image (into ``out`` when given)."""
    return resize_bilinear(x[None], size, out=None if out is None else out[None])[0]
