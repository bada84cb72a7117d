"""PNG files of uint8 pictures, encoded for speed: PNG encoding is the largest cost of a folder run after
the forward pass.

Each row is stored as its difference from the row above (PNG's "up" filter, which turns the smooth PFV
pictures into runs of small numbers) and deflated by Intel ISA-L (the ``isal`` package) at its fastest
level: about 0.2 ms for a 224 x 224 picture, 3-7x faster than zlib's Huffman-only strategy and 8-12x faster
than OpenCV's or Pillow's encoders, for files a quarter to a third the size of uncompressed ones. Where
``isal`` is missing, zlib's Huffman-only strategy stands in (same pictures, other bytes). NumPy and the
compressors release the GIL, so threads encode in parallel.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

try:
    from isal import isal_zlib
except ImportError:  # isal is a dependency; an install without it still writes PNGs
    isal_zlib = None

from ..util.files import write_atomic

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UP = 2  # PNG filter type 2: each byte minus the byte above it, modulo 256
_COLOUR_TYPES = {2: 0, 3: 2}  # greyscale (H, W), RGB (H, W, 3)


def encode_png(picture: np.ndarray) -> bytes:
    """An ``(H, W)`` greyscale or ``(H, W, 3)`` RGB uint8 picture as the bytes of a PNG file."""
    if picture.dtype != np.uint8 or picture.ndim not in _COLOUR_TYPES or (picture.ndim == 3 and picture.shape[2] != 3):
        raise ValueError(f"expected an (H, W) or (H, W, 3) uint8 picture, got {picture.dtype} of shape {picture.shape}")
    height, width = picture.shape[:2]
    if height < 1 or width < 1:
        raise ValueError(f"cannot encode an empty picture of shape {picture.shape}")
    flat = np.ascontiguousarray(picture).reshape(height, -1)
    rows = np.empty((height, flat.shape[1] + 1), dtype=np.uint8)
    rows[:, 0] = _UP
    rows[0, 1:] = flat[0]  # the first row has zeros above it: "up" leaves it as it is
    np.subtract(flat[1:], flat[:-1], out=rows[1:, 1:])
    data = _deflate(rows)
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPES[picture.ndim], 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def _deflate(rows: np.ndarray) -> bytes:
    """The zlib stream of the filtered rows (an IDAT chunk's content)."""
    if isal_zlib is not None:
        return isal_zlib.compress(rows, 0)
    deflate = zlib.compressobj(1, zlib.DEFLATED, 15, 9, zlib.Z_HUFFMAN_ONLY)
    return deflate.compress(rows) + deflate.flush()


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def write_png(path: str | Path, picture: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` RGB or ``(H, W)`` uint8 picture as PNG, atomically (a temporary file, then rename)."""
    return write_atomic(path, encode_png(picture))
