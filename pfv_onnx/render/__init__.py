"""Pictures from arrays: every function takes NumPy arrays and returns NumPy arrays, except the writers."""

from .html import Figure, Section, page
from .images import colour_map, labelled_grid, mosaic, overlay, to_uint8, write_png

__all__ = ["Figure", "Section", "colour_map", "labelled_grid", "mosaic", "overlay", "page", "to_uint8", "write_png"]
