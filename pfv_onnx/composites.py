"""Test images whose object is known to the pixel: cut-out objects pasted on photos at seeded random places
and sizes (the object's alpha channel is its mask), and folders of image and mask pairs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import ImageError
from .preprocess import IMAGE_SUFFIXES, expand_inputs, load_image

# An object's longer side, as a share of the image's shorter side.
SCALE = (0.3, 0.6)


@dataclass(frozen=True)
class Scene:
    """An image and the object in it: ``image`` ``(H, W, 3)`` uint8 RGB, ``mask`` ``(H, W)`` bool."""

    image: np.ndarray
    mask: np.ndarray
    name: str


def composites(
    objects: Sequence[Path], backgrounds: Sequence[Path], size: tuple[int, int], count: int, seed: int = 0
) -> list[Scene]:
    """``count`` scenes of ``size`` ``(H, W)``: each object in turn (a cut-out with transparency), shrunk to
    :data:`SCALE` of the image, flipped or not, pasted at a random place on a random crop of a random
    background; all seeded."""
    if not objects or not backgrounds:
        raise ImageError("composites need at least one object and one background")
    rng = np.random.default_rng(seed)
    cutouts = [_cutout(path) for path in objects]
    photos = [load_image(path) for path in backgrounds]
    height, width = size
    scenes = []
    for i in range(count):
        cutout, name = cutouts[i % len(cutouts)], Path(objects[i % len(objects)]).stem
        which = int(rng.integers(len(photos)))
        canvas = _cover(photos[which], size, rng).convert("RGBA")
        side = rng.uniform(*SCALE) * min(height, width)
        factor = side / max(cutout.size)
        shape = (max(1, round(cutout.width * factor)), max(1, round(cutout.height * factor)))
        piece = cutout.resize(shape, Image.Resampling.LANCZOS)
        if rng.random() < 0.5:
            piece = piece.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        left, top = int(rng.integers(0, width - piece.width + 1)), int(rng.integers(0, height - piece.height + 1))
        canvas.alpha_composite(piece, (left, top))
        mask = np.zeros(size, bool)
        mask[top : top + piece.height, left : left + piece.width] = np.asarray(piece)[..., 3] >= 128
        scenes.append(Scene(np.asarray(canvas.convert("RGB")), mask, f"{i:03d}_{name}_on_{Path(backgrounds[which]).stem}"))
    return scenes


def pairs(images: Path, masks: Path, size: tuple[int, int]) -> list[Scene]:
    """The images of a folder with their masks (a file of the same stem in ``masks``, the object where it
    is not black), both stretched to ``size``."""
    if not masks.is_dir():
        raise ImageError(f"{masks}: not a folder of masks")
    found = {p.stem: p for p in masks.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    scenes = []
    for path in expand_inputs([images]):
        if path.stem not in found:
            raise ImageError(f"{path}: no mask for it in {masks}")
        image = load_image(path).resize(size[::-1], Image.Resampling.BILINEAR)
        mask = np.asarray(load_image(found[path.stem]).convert("L").resize(size[::-1], Image.Resampling.NEAREST)) > 0
        if mask.all() or not mask.any():
            raise ImageError(f"{found[path.stem]}: the mask must mark some of the image and leave some of it")
        scenes.append(Scene(np.asarray(image), mask, path.stem))
    return scenes


def _cutout(path: Path) -> Image.Image:
    """An object with its transparency (RGBA); refused when hardly anything of it is transparent, or
    opaque."""
    picture = load_image(path, alpha=True)
    opaque = (np.asarray(picture)[..., 3] >= 128).mean()
    if opaque > 0.95:
        raise ImageError(f"{path}: not a cut-out (hardly anything of it is transparent)")
    if opaque < 0.01:
        raise ImageError(f"{path}: not a cut-out (hardly anything of it is opaque)")
    return picture


def _cover(photo: Image.Image, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A random crop of ``photo`` with the aspect of ``size``, resized to it."""
    height, width = size
    scale = max(width / photo.width, height / photo.height) * rng.uniform(1.0, 1.5)
    crop_w, crop_h = width / scale, height / scale
    left, top = rng.uniform(0, photo.width - crop_w), rng.uniform(0, photo.height - crop_h)
    return photo.resize((width, height), Image.Resampling.BILINEAR, box=(left, top, left + crop_w, top + crop_h))
