"""Test images whose object is known to the pixel: cut-out objects pasted on photos at seeded random places
and sizes (the object's alpha channel is its mask), and folders of image and mask pairs (a mask with
transparency marks the object by its alpha too)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..util import memory
from ..util.console import plural
from ..errors import ImageError
from .preprocess import _images_in, expand_inputs, load_image

# An object's longer side, as a share of the image's shorter side.
SCALE = (0.3, 0.6)
# Memory a scene holds: its RGB image and its mask, a byte a pixel each.
SCENE_BYTES_PER_PIXEL = 4
# Where a cut-out or a mask with transparency is this opaque, it is the object.
OPAQUE = 128


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
    require_memory(count, size, "ask for fewer composites")
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
        mask[top : top + piece.height, left : left + piece.width] = np.asarray(piece)[..., 3] >= OPAQUE
        scenes.append(Scene(np.asarray(canvas.convert("RGB")), mask, f"{i:03d}_{name}_on_{Path(backgrounds[which]).stem}"))
    return scenes


def pairs(images: Path, masks: Path, size: tuple[int, int]) -> list[Scene]:
    """The images of ``images`` (a file, a folder, or a folder-per-class root) with their masks, both
    stretched to ``size`` ``(H, W)``. An image's mask is the file of the same name, but for its suffix, at
    the same place under ``masks``: ``masks/rex.png`` for ``images/rex.jpg``, ``masks/dogs/rex.png`` for
    ``images/dogs/rex.jpg``. Masks no image names are left alone. The object is where a mask is opaque
    when it has transparency (as in a cut-out), else where it is not black.

    Raises:
        ImageError: ``masks`` is not a folder; an image has no mask, or two (names that differ only in
            their suffix); two images would share one mask; a mask marks all of its image or none of it.
    """
    if not masks.is_dir():
        raise ImageError(f"{masks}: not a folder of masks")
    root = images if images.is_dir() else images.parent
    named: dict[Path, Path] = {}  # each image by its path under the root, less its suffix
    for path in expand_inputs([images]):
        name = path.relative_to(root).with_suffix("")
        if name in named:
            raise ImageError(f"{named[name]} and {path}: two images of one name would share one mask (rename one)")
        named[name] = path
    require_memory(len(named), size, "evaluate fewer images at a time")
    listed: dict[Path, list[Path]] = {}  # the image files of each mask folder looked in
    scenes = []
    for name, path in named.items():
        folder = masks / name.parent
        if folder not in listed:
            listed[folder] = _images_in(folder) if folder.is_dir() else []
        found = [p for p in listed[folder] if p.stem == name.name]
        if not found:
            raise ImageError(f"{path}: no mask for it in {folder} (a file named {name.name} with an image suffix)")
        if len(found) > 1:
            raise ImageError(f"{path}: two masks for it in {folder}, {found[0].name} and {found[1].name} (keep one)")
        image = load_image(path).resize(size[::-1], Image.Resampling.BILINEAR)
        scenes.append(Scene(np.asarray(image), read_mask(found[0], size), name.as_posix()))
    return scenes


def read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool: the object a mask file marks, stretched to ``size``: where the mask is opaque when it
    has transparency (its alpha channel, like a cut-out's), else where it is not black.

    Raises:
        ImageError: the file cannot be read, or the mask marks all of the image or none of it.
    """
    picture = load_image(path, alpha=True)  # 8-bit RGBA; opaque everywhere when the file has no transparency
    alpha = picture.getchannel("A")
    if alpha.getextrema()[0] < 255:
        plane, lowest = alpha, OPAQUE
    else:
        plane, lowest = picture.convert("L"), 1
    mask = np.asarray(plane.resize(size[::-1], Image.Resampling.NEAREST)) >= lowest
    if mask.all() or not mask.any():
        raise ImageError(f"{path}: the mask must mark some of the image and leave some of it")
    return mask


def require_memory(count: int, size: tuple[int, int], hint: str) -> None:
    """Refuse, with one line, ``count`` scenes of ``size`` ``(H, W)`` that would not fit in memory."""
    height, width = size
    memory.require(count * height * width * SCENE_BYTES_PER_PIXEL, f"{plural(count, 'image')} and their masks at {height} x {width}", hint)


def _cutout(path: Path) -> Image.Image:
    """An object with its transparency (RGBA); refused when hardly anything of it is transparent, or
    opaque."""
    picture = load_image(path, alpha=True)
    opaque = (np.asarray(picture)[..., 3] >= OPAQUE).mean()
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
