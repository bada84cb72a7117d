"""Turning PFV arrays into pictures: 8-bit conversion, colour maps, overlays, mosaics, PNG files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..files import atomic_path


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Values in ``[0, 1]`` (any shape, float) to uint8 ``0..255``, rounded."""
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def colour_map(values: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """``(H, W)`` values to an ``(H, W, 3)`` uint8 RGB picture with the viridis colour map.

    ``lo`` and ``hi`` fix the range (default: the array's own minimum and maximum), so several maps can
    share one scale.
    """
    lo = float(values.min()) if lo is None else lo
    hi = float(values.max()) if hi is None else hi
    scaled = np.zeros(values.shape, np.float32) if hi <= lo else (values - lo) / (hi - lo)
    bgr = cv2.applyColorMap(to_uint8(scaled), cv2.COLORMAP_VIRIDIS)
    return np.ascontiguousarray(bgr[..., ::-1])


def overlay(colours: np.ndarray, image: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """Blend ``(H, W, 3)`` uint8 colours over a greyscale copy of an ``(H, W, 3)`` uint8 RGB image."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    grey3 = np.repeat(grey[..., None], 3, axis=2)
    return cv2.addWeighted(colours, alpha, grey3, 1.0 - alpha, 0.0)


def mosaic(rows: Sequence[Sequence[np.ndarray]], gap: int = 4, background: int = 255) -> np.ndarray:
    """Tile rows of equally sized ``(H, W, 3)`` uint8 pictures into one ``uint8`` picture with gaps."""
    if not rows or not rows[0]:
        raise ValueError("mosaic needs at least one picture")
    height, width = rows[0][0].shape[:2]
    columns = max(len(row) for row in rows)
    out = np.full((len(rows) * (height + gap) - gap, columns * (width + gap) - gap, 3), background, np.uint8)
    for r, row in enumerate(rows):
        for c, picture in enumerate(row):
            if picture.shape[:2] != (height, width):
                raise ValueError(f"mosaic pictures must share one size, got {picture.shape[:2]} and {(height, width)}")
            top, left = r * (height + gap), c * (width + gap)
            out[top : top + height, left : left + width] = picture
    return out


def write_png(path: str | Path, picture: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` or ``(H, W)`` uint8 picture as PNG, atomically (a temporary file, then rename)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")
    return path
