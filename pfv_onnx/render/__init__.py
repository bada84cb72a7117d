"""Pictures from arrays: every function takes NumPy arrays and returns NumPy arrays, except the writers."""

from .html import Figure, Section, page
from .images import (
    BAR_COLOURS,
    bars,
    colour_map,
    labelled_grid,
    line_chart,
    mark,
    matrix_picture,
    mosaic,
    overlay,
    overlay_photo,
    table_picture,
    to_uint8,
)
from .png import encode_png, write_png

__all__ = [
    "BAR_COLOURS",
    "Figure",
    "Section",
    "bars",
    "colour_map",
    "encode_png",
    "labelled_grid",
    "line_chart",
    "mark",
    "matrix_picture",
    "mosaic",
    "overlay",
    "overlay_photo",
    "page",
    "table_picture",
    "to_uint8",
    "write_png",
]
