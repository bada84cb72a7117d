"""Pictures from arrays: every function takes NumPy arrays and returns NumPy arrays, except the writers."""

from .images import colour_map, mosaic, overlay, to_uint8, write_png

__all__ = ["colour_map", "mosaic", "overlay", "to_uint8", "write_png"]
