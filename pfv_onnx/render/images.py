"""Turning PFV arrays into pictures: 8-bit conversion, colour maps, overlays, mosaics."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from ..images.preprocess import crop_box


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
    return cv2.applyColorMap(to_uint8(scaled), _VIRIDIS_RGB)


# OpenCV's viridis as a 256-entry lookup table in RGB order: OpenCV applies it as it is, so the picture
# comes out RGB without a channel swap.
_VIRIDIS_RGB = np.ascontiguousarray(cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_VIRIDIS)[:, :, ::-1])


def overlay(colours: np.ndarray, image: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """Blend ``(H, W, 3)`` colours (uint8, or float in ``[0, 1]`` as ``result.rgb[i]``) over a greyscale copy of
    an ``(H, W, 3)`` uint8 RGB image of the same size; an ``(H, W, 3)`` uint8 picture.

    The image first, as other libraries take it (``overlay(image, result.rgb[i])``), is taken too where the
    arrays say which is which (a float picture is the colours); anything else is refused with a ValueError.
    """
    colours, image = _overlay_arguments(np.asarray(colours), np.asarray(image))
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.addWeighted(colours, alpha, cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB), 1.0 - alpha, 0.0)


def overlay_photo(colours: np.ndarray, photo: np.ndarray, resize: str = "crop", alpha: float = 0.6) -> np.ndarray:
    """The PFV picture of a photo over the photo at its own resolution: ``(H, W, 3)`` uint8 for an ``(H, W, 3)``
    uint8 photo. ``colours`` ``(h, w, 3)`` (uint8, or float in ``[0, 1]`` as ``result.rgb[i]``) are the
    picture of the model's ``(h, w)`` input, which ``resize`` cut from the photo
    (:func:`~pfv_onnx.images.preprocess.crop_box`): they are stretched over that part of the photo, and what
    the model did not see stays grey."""
    colours, photo = np.asarray(colours), np.asarray(photo)
    if colours.ndim != 3 or colours.shape[2] != 3 or photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise ValueError(f"overlay_photo(colours, photo) takes (h, w, 3) colours and an (H, W, 3) uint8 photo; got {colours.shape} and {photo.shape} {photo.dtype}")
    colours = to_uint8(colours) if colours.dtype.kind == "f" else colours.astype(np.uint8)
    left, top, right, bottom = crop_box((photo.shape[1], photo.shape[0]), colours.shape[:2], resize)
    # The affine map from the picture's pixel centres to the photo's, as the crop was resampled.
    sx, sy = (right - left) / colours.shape[1], (bottom - top) / colours.shape[0]
    warp = np.array([[sx, 0.0, left + 0.5 * sx - 0.5], [0.0, sy, top + 0.5 * sy - 0.5]])
    size = (photo.shape[1], photo.shape[0])
    placed = cv2.warpAffine(colours, warp, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    seen = cv2.warpAffine(np.ones(colours.shape[:2], np.uint8), warp, size, flags=cv2.INTER_NEAREST, borderValue=0)
    grey = cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    blended = cv2.addWeighted(placed, alpha, grey, 1.0 - alpha, 0.0)
    return np.where(seen[..., None] > 0, blended, grey)


def _overlay_arguments(colours: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(colours, image)`` as uint8, swapped when the image came first and the colours are float; else ValueError."""
    if colours.dtype == np.uint8 and image.dtype.kind == "f":  # overlay(image, rgb): only the colours are float
        colours, image = image, colours
    expected = "overlay(colours, image) takes (H, W, 3) colours (uint8, or float in [0, 1]) and an (H, W, 3) uint8 image of the same size"
    for array in (colours, image):
        if array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"{expected}; got shapes {colours.shape} and {image.shape}")
    if colours.shape != image.shape:
        raise ValueError(f"{expected}; got shapes {colours.shape} and {image.shape}")
    if image.dtype != np.uint8 or colours.dtype != np.uint8 and colours.dtype.kind != "f":
        raise ValueError(f"{expected}; got {colours.dtype} colours and a {image.dtype} image")
    return (to_uint8(colours) if colours.dtype.kind == "f" else colours), image


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


FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text_band(width: int, height: int, text: str, scale: float = 0.45, background: int = 255) -> np.ndarray:
    """An ``(height, width, 3)`` uint8 band with ``text`` centred in dark grey, shortened to fit."""
    band = np.full((height, width, 3), background, np.uint8)
    while text and cv2.getTextSize(text, FONT, scale, 1)[0][0] > width - 4:
        text = text[:-3] + ".." if len(text) > 3 else ""
    (w, h), _ = cv2.getTextSize(text, FONT, scale, 1)
    cv2.putText(band, text, ((width - w) // 2, (height + h) // 2), FONT, scale, (40, 40, 40), 1, cv2.LINE_AA)
    return band


BAR_COLOURS = ((225, 45, 45), (45, 170, 45), (50, 80, 230))
# Lines of a chart: the three component colours first, then seven more that stay apart from each other.
LINE_COLOURS = (*BAR_COLOURS, (240, 150, 20), (150, 60, 200), (30, 170, 190), (120, 120, 120), (200, 60, 150), (130, 90, 40), (0, 0, 0))


def bars(shares: Sequence[float], width: int, height: int = 100) -> np.ndarray:
    """An ``(height, width, 3)`` uint8 bar chart of up to three shares in ``[0, 1]`` (red, green, blue),
    each labelled with its percentage."""
    panel = np.full((height, width, 3), 255, np.uint8)
    slot = width // max(len(shares), 1)
    top = 14
    for i, share in enumerate(shares):
        x0, x1 = i * slot + slot // 4, (i + 1) * slot - slot // 4
        bar = int(round(float(np.clip(share, 0, 1)) * (height - top - 2)))
        panel[height - 2 - bar : height - 2, x0:x1] = BAR_COLOURS[i % 3]
        label = f"{share:.0%}"
        (w, _), _ = cv2.getTextSize(label, FONT, 0.35, 1)
        cv2.putText(panel, label, (i * slot + (slot - w) // 2, 11), FONT, 0.35, (40, 40, 40), 1, cv2.LINE_AA)
    panel[height - 2 :, :] = 120
    return panel


def matrix_picture(
    values: np.ndarray, labels: Sequence[str], text: Sequence[Sequence[str]] | None = None, cell: int = 64, lo: float | None = None, hi: float | None = None
) -> np.ndarray:
    """A ``(K, K)`` matrix as a labelled uint8 picture: viridis cells (rows top to bottom, columns left to
    right) with ``text[i][j]`` (default the value, two decimals) written in each."""
    k = values.shape[0]
    margin = 110
    picture = np.full((margin + k * cell, margin + k * cell, 3), 255, np.uint8)
    lo = float(values.min()) if lo is None else lo
    hi = float(values.max()) if hi is None else hi
    for i in range(k):
        for j in range(k):
            y, x = margin + i * cell, margin + j * cell
            colour = colour_map(np.full((1, 1), values[i, j], np.float32), lo, hi)[0, 0]
            picture[y : y + cell - 1, x : x + cell - 1] = colour
            label = text[i][j] if text is not None else f"{values[i, j]:.2f}"
            shade = (255, 255, 255) if colour.mean() < 128 else (20, 20, 20)
            (w, h), _ = cv2.getTextSize(label, FONT, 0.4, 1)
            cv2.putText(picture, label, (x + (cell - w) // 2, y + (cell + h) // 2), FONT, 0.4, shade, 1, cv2.LINE_AA)
        picture[margin + i * cell : margin + (i + 1) * cell - 1, :margin] = _text_band(margin, cell - 1, labels[i])
        column = _text_band(cell - 1, margin, "")
        cv2.putText(column, labels[i][:10], (4, margin - 8), FONT, 0.38, (40, 40, 40), 1, cv2.LINE_AA)
        picture[:margin, margin + i * cell : margin + (i + 1) * cell - 1] = column
    return picture


def line_chart(
    x: Sequence[float], series: dict[str, Sequence[float]], x_label: str, y_range: tuple[float, float] = (-0.2, 1.0), size: tuple[int, int] = (420, 640)
) -> np.ndarray:
    """A small uint8 line chart: one line per named series over ``x``, with axes, ticks and a legend."""
    height, width = size
    left, right, top, bottom = 56, 20, 16, 44
    legend = max([cv2.getTextSize(name, FONT, 0.42, 1)[0][0] for name in series] + [0]) + 8
    chart = np.full((height, width, 3), 255, np.uint8)
    lo, hi = y_range
    span_x = (max(x) - min(x)) or 1.0

    def point(xv: float, yv: float) -> tuple[int, int]:
        px = left + (xv - min(x)) / span_x * (width - left - right)
        py = top + (hi - yv) / (hi - lo) * (height - top - bottom)
        return int(round(px)), int(round(py))

    decimals = max(1, int(np.ceil(-np.log10((hi - lo) / 6))))  # enough that neighbouring ticks differ
    for tick in np.linspace(lo, hi, 7):
        _, py = point(min(x), tick)
        cv2.line(chart, (left, py), (width - right, py), (225, 225, 225), 1)
        cv2.putText(chart, f"{tick + 0.0:.{decimals}f}", (6, py + 4), FONT, 0.38, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.rectangle(chart, (left, top), (width - right, height - bottom), (120, 120, 120), 1)
    for xv in list(x)[:: int(np.ceil(len(x) / 11))]:  # at most 11 labels, so they do not overlap
        px, _ = point(xv, lo)
        cv2.putText(chart, f"{xv:g}", (px - 8, height - bottom + 16), FONT, 0.35, (60, 60, 60), 1, cv2.LINE_AA)
    cv2.putText(chart, x_label, (left, height - 8), FONT, 0.42, (40, 40, 40), 1, cv2.LINE_AA)
    for i, (name, ys) in enumerate(series.items()):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        points = [point(xv, float(np.clip(yv, lo, hi))) for xv, yv in zip(x, ys)]
        for a, b in zip(points, points[1:]):
            cv2.line(chart, a, b, colour, 2, cv2.LINE_AA)
        for p in points:
            cv2.circle(chart, p, 3, colour, -1, cv2.LINE_AA)
        cv2.putText(chart, name, (width - right - legend, top + 18 + 16 * i), FONT, 0.42, colour, 1, cv2.LINE_AA)
    return chart


def table_picture(
    values: np.ndarray, row_labels: Sequence[str], column_labels: Sequence[str], text: Sequence[Sequence[str]] | None = None, cell: tuple[int, int] = (26, 92)
) -> np.ndarray:
    """An ``(R, C)`` table as a uint8 picture: each column's cells in viridis over that column's own range,
    ``text[r][c]`` (default the value, three decimals) written in each, labels left and above."""
    rows, columns = values.shape
    height, width = cell
    margin = 180
    picture = np.full((height + rows * height, margin + columns * width, 3), 255, np.uint8)
    for c in range(columns):
        column = values[:, c].astype(np.float32)
        finite = column[np.isfinite(column)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        picture[:height, margin + c * width : margin + (c + 1) * width - 1] = _text_band(width - 1, height, column_labels[c], 0.4)
        for r in range(rows):
            y, x = height + r * height, margin + c * width
            shade = colour_map(np.full((1, 1), column[r] if np.isfinite(column[r]) else lo, np.float32), lo, hi)[0, 0]
            picture[y : y + height - 1, x : x + width - 1] = shade
            label = text[r][c] if text is not None else f"{values[r, c]:.3f}"
            ink = (255, 255, 255) if shade.mean() < 128 else (20, 20, 20)
            (w, h), _ = cv2.getTextSize(label, FONT, 0.4, 1)
            cv2.putText(picture, label, (x + (width - w) // 2, y + (height + h) // 2), FONT, 0.4, ink, 1, cv2.LINE_AA)
    for r in range(rows):
        picture[height + r * height : height + (r + 1) * height - 1, :margin] = _text_band(margin, height - 1, row_labels[r], 0.42)
    return picture


def mark(image: np.ndarray, masks: Sequence[tuple[np.ndarray, tuple[int, int, int]]], alpha: float = 0.65) -> np.ndarray:
    """A greyscale copy of an ``(H, W, 3)`` uint8 image with each ``(H, W)`` bool mask painted in its colour."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    out = np.repeat(grey[..., None], 3, axis=2).astype(np.float32)
    for mask, colour in masks:
        out[mask] = (1 - alpha) * out[mask] + alpha * np.float32(colour)
    return out.astype(np.uint8)


def labelled_grid(
    rows: Sequence[Sequence[np.ndarray]],
    row_titles: Sequence[str] | None = None,
    column_titles: Sequence[str] | None = None,
    captions: Sequence[Sequence[str]] | None = None,
    gap: int = 4,
) -> np.ndarray:
    """A figure: :func:`mosaic` of equally sized ``(H, W, 3)`` uint8 tiles with titles left of each row,
    above each column and, optionally, one caption under each tile (``captions[r][c]``)."""
    height, width = rows[0][0].shape[:2]
    band = 20
    lines = []
    for r, row in enumerate(rows):
        tiles = list(row)
        if captions is not None:
            tiles = [np.vstack([tile, _text_band(width, band, captions[r][c])]) for c, tile in enumerate(tiles)]
        lines.append(tiles)
    grid = mosaic(lines, gap=gap)
    tile_height = height + (band if captions is not None else 0)
    if column_titles is not None:
        top = mosaic([[_text_band(width, band + 4, t) for t in column_titles]], gap=gap)
        grid = np.vstack([top, np.full((gap, grid.shape[1], 3), 255, np.uint8), grid])
    if row_titles is not None:
        margin = 150
        left = np.full((grid.shape[0], margin, 3), 255, np.uint8)
        offset = band + 4 + gap if column_titles is not None else 0
        for r, title in enumerate(row_titles):
            top_y = offset + r * (tile_height + gap)
            left[top_y : top_y + tile_height] = _text_band(margin, tile_height, title)
        grid = np.hstack([left, grid])
    return grid
