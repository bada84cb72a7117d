"""From photos to the model's input: decoding, resizing, and normalising by a preset (:mod:`pfv_onnx.presets`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import FolderWarning, ImageError, first_line, warn_caller
from ..options import RESIZE_MODES
from ..presets import PRESETS, Preset

__all__ = [
    "IMAGE_SUFFIXES", "LUMA", "MAX_INPUT_PIXELS", "MAX_PIXELS", "PRESETS", "ImageFile", "Preset", "expand_inputs", "find_images", "stratified", "fit_image", "load_image", "to_image", "to_model_input",
    "to_rgb",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
# The evaluation crop of ImageNet models: resize the shorter side to size / 0.875 (256 for 224), crop the centre.
CROP_FRACTION = 0.875


@dataclass(frozen=True)
class ImageFile:
    """An image file found in the inputs; ``label``: its class when it lies under a folder-per-class root."""

    path: Path
    label: str | None = None


def find_images(inputs: Iterable[str | Path]) -> list[ImageFile]:
    """The image files of ``inputs``: files as given; a folder holding images, its images (sorted, not
    recursive; a warning when its subfolders hold images too); a folder holding none but subfolders that
    do, a folder-per-class root: each subfolder's images, recursively, labelled with the subfolder's name.
    Hidden files and folders and links to folders are passed over.

    Raises:
        ImageError: a path that does not exist, or is neither a regular file nor a folder (a FIFO, a
            device), or a folder without images.
    """
    found: list[ImageFile] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            images = _images_in(path)
            if images:
                found += [ImageFile(p) for p in images]
                if any(_holds_images(sub) for sub in _subfolders(path)):
                    warn_caller(f"{path}: holds images, so its subfolders were not read (a folder-per-class root holds "
                                "only subfolders; give the subfolders too to read them)", FolderWarning)
                continue
            classes = [(sub.name, _images_below(sub)) for sub in _subfolders(path)]
            classes = [(name, images) for name, images in classes if images]
            if not classes:
                raise ImageError(f"{path}: folder holds no images ({', '.join(IMAGE_SUFFIXES)}), nor subfolders of them")
            found += [ImageFile(p, name) for name, images in classes for p in images]
        elif path.is_file():
            found.append(ImageFile(path))
        elif path.exists():
            raise ImageError(f"{path}: not a regular file or folder")
        else:
            raise ImageError(f"{path}: no such file or folder")
    return found


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """The paths of :func:`find_images`."""
    return [f.path for f in find_images(inputs)]


def stratified(files: Sequence[ImageFile]) -> list[ImageFile]:
    """``files`` reordered so that every stretch of them holds the classes in proportion (each class's
    files in their order, interleaved by their position within the class): consecutive batches then mix
    the classes and their colours can be compared. Unlabelled files count as one class."""
    by_class: dict[str | None, list[int]] = {}
    for i, f in enumerate(files):
        by_class.setdefault(f.label, []).append(i)
    rank = {}
    for members in by_class.values():
        for position, i in enumerate(members):
            rank[i] = (position + 0.5) / len(members)
    return [files[i] for i in sorted(range(len(files)), key=lambda i: rank[i])]


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _visible(p) and p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _subfolders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _visible(p) and p.is_dir() and not p.is_symlink())


def _holds_images(folder: Path) -> bool:
    """Whether ``folder`` or a subfolder holds an image (stops at the first)."""
    return bool(_images_in(folder)) or any(_holds_images(sub) for sub in _subfolders(folder))


def _images_below(folder: Path) -> list[Path]:
    """The images of ``folder`` and of its subfolders, depth first, sorted; links to folders not followed."""
    return _images_in(folder) + [p for sub in _subfolders(folder) for p in _images_below(sub)]


# The decoders of the formats the README lists, and no others: Pillow picks a decoder by what a file holds,
# not by its name, and would otherwise hand PostScript to Ghostscript or decode a dozen more formats.
FORMATS = ("JPEG", "PNG", "GIF", "TIFF", "WEBP", "BMP", "PPM")
# Larger images are refused: a small file can decode to gigabytes (a "decompression bomb"). 64 megapixels
# (8000 x 8000) is below Pillow's own warning level (about 89.5), so refusals between the two are quiet.
MAX_PIXELS = 64_000_000
# The largest model input, in pixels: what a model may declare, --size may ask for, or a picture output
# describe. A photo may be larger (it is resized down to the input), but the input is allocated per image
# and per batch, in float32, with feature maps to match: 4096 x 4096 (192 MiB an RGB image) is beyond any
# vision model's and bounds what a model's metadata can make us allocate.
MAX_INPUT_SIDE = 4096
MAX_INPUT_PIXELS = MAX_INPUT_SIDE * MAX_INPUT_SIDE
# Memory one decode may take: the decoded image and its 8-bit RGB copy, if it needs one. An 8000 x 8000 RGB
# photo fits; a float image of that size, which also needs a float32 copy, does not. Decodes of more than BIG_DECODE
# bytes run one at a time, whatever the number of decoding threads.
MAX_DECODE_BYTES = 600 * 2**20
BIG_DECODE = 128 * 2**20
_big_decodes = threading.Semaphore(1)
# Transparent pixels are shown on white, as most image viewers show them.
BACKGROUND = (255, 255, 255)


def decode_bytes(mode: str, pixels: int) -> int:
    """Bytes that decoding an image of ``pixels`` pixels in Pillow's ``mode`` and converting it to 8-bit RGB
    may take at once: Pillow keeps 1, 2 or 4 bytes a pixel, and as much again when EXIF asks for a turn;
    an RGB image needs no copy, one with transparency four RGBA-sized ones (composited on white), integer
    and float images a float32 copy and two 8-bit ones, any other an RGB copy."""
    stored = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    if mode == "RGB":
        converted = 0
    elif mode in ("RGBA", "LA", "PA", "La", "RGBa", "P"):  # a palette may hold transparency
        converted = 16
    elif mode.startswith("I") or mode == "F":
        converted = 9
    else:
        converted = 4
    return pixels * (2 * stored + converted)


def load_image(path: str | Path, alpha: bool = False) -> Image.Image:
    """Decode an image file (one of :data:`FORMATS`) to 8-bit RGB: the first frame or page, EXIF orientation
    applied, 16-bit and float images scaled to 8 bits, transparency composited on white (or, with
    ``alpha``, kept: 8-bit RGBA).

    Raises:
        ImageError: the file is missing or not a regular file, is not in one of :data:`FORMATS`, cannot be
            decoded, or is larger than :data:`MAX_PIXELS` or :data:`MAX_DECODE_BYTES`.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # never opened: a FIFO would block the run
        raise ImageError(f"{path}: not a regular file")
    try:
        # Beyond its own limit Pillow warns as it opens the file, and beyond twice that it refuses.
        with Image.open(path, formats=FORMATS) as image:
            pixels = image.width * image.height
            if pixels > MAX_PIXELS:
                raise ImageError(f"{path}: {image.width} x {image.height} pixels, over the limit of {MAX_PIXELS:,}")
            needed = decode_bytes(image.mode, pixels)
            if needed > MAX_DECODE_BYTES:
                raise ImageError(
                    f"{path}: {image.width} x {image.height} pixels in mode {image.mode} take {needed / 2**20:,.0f} MB "
                    f"to decode, over the limit of {MAX_DECODE_BYTES / 2**20:,.0f} MB"
                )
            with _big_decodes if needed > BIG_DECODE else contextlib.nullcontext():
                image.load()
                ImageOps.exif_transpose(image, in_place=True)
                if alpha:
                    return (to_rgb(image) if image.mode.startswith("I") or image.mode == "F" else image).convert("RGBA")
                return to_rgb(image)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: too many pixels, over the limit of {MAX_PIXELS:,}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: cannot decode image (not one of {', '.join(FORMATS)})") from None
    except Exception as exc:  # Pillow's decoders raise many types for damaged files
        raise ImageError(f"{path}: cannot decode image ({first_line(exc, 120)})") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB (see :func:`load_image`)."""
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        if image.mode.startswith("I;16"):
            values = values / 257.0  # 16-bit: 65535 -> 255, however dark the picture
        elif image.mode == "F" and values.max(initial=0) <= 1.0:
            values = values * 255.0  # float images in [0, 1]
        elif values.max(initial=0) > 255:
            values = values / 257.0  # 32-bit integers holding 16-bit values
        image = Image.fromarray(np.clip(values + np.float32(0.5), 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def blank_image(preset: Preset, size: tuple[int, int]) -> np.ndarray:
    """A picture without features: ``(H, W, 3)`` uint8, the preset's mean colour everywhere (black for
    ``raw``, whose models normalise inside themselves)."""
    colour = np.clip(np.round(preset.mean), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(colour, (*size, 3)))


def to_image(item: str | Path | Image.Image | np.ndarray) -> Image.Image:
    """A path, a PIL image or a uint8 ``(H, W)`` / ``(H, W, 3)`` / ``(H, W, 4)`` RGB(A) array as RGB."""
    if isinstance(item, (str, Path)):
        return load_image(item)
    if isinstance(item, Image.Image):
        return to_rgb(item)
    array = np.asarray(item)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ImageError(f"an image array must be uint8 (H, W), (H, W, 3) or (H, W, 4), got {array.dtype} {array.shape}")
    if array.size == 0:
        raise ImageError(f"an image array must not be empty, got shape {array.shape}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return to_rgb(Image.fromarray(array))


def crop_box(photo: tuple[int, int], size: tuple[int, int], resize: str = "crop") -> tuple[float, float, float, float]:
    """The part of a photo of ``(width, height)`` pixels that :func:`fit_image` turns into the model's
    ``size`` = ``(H, W)`` input: ``(left, top, right, bottom)`` in the photo's pixels (the whole photo with
    ``stretch``; the centre crop, as ImageNet evaluation does, with ``crop``)."""
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    photo_w, photo_h = photo
    if resize == "stretch":
        return 0.0, 0.0, float(photo_w), float(photo_h)
    height, width = size
    scale = max(height, width) / CROP_FRACTION / min(photo)
    scaled_w, scaled_h = max(width, round(photo_w * scale)), max(height, round(photo_h * scale))
    left, top = (scaled_w - width) // 2, (scaled_h - height) // 2
    sx, sy = photo_w / scaled_w, photo_h / scaled_h
    return left * sx, top * sy, (left + width) * sx, (top + height) * sy


def fit_image(image: Image.Image, size: tuple[int, int], resize: str = "crop") -> np.ndarray:
    """Resize an RGB image to ``size`` = ``(H, W)``: ``(H, W, 3)`` uint8.

    ``crop`` keeps the aspect ratio (shorter side to ``size / 0.875``, centre crop), as ImageNet evaluation
    does; ``stretch`` resizes to ``size`` directly and shows the whole photo (:func:`crop_box`).
    """
    height, width = size
    # Resample only the crop's box of the source: a long thin image is never scaled up whole.
    box = crop_box(image.size, size, resize)
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR, box=None if resize == "stretch" else box))


# ITU-R BT.601 luma, as PIL's "L" mode: greyscale models see the brightness of the photo.
LUMA = (0.299, 0.587, 0.114)


def to_model_input(pixels: np.ndarray, preset: Preset, layout: str, channels: int, dtype: np.dtype) -> np.ndarray:
    """``(B, H, W, 3)`` uint8 RGB pixels to the model's float input, ``(B, C, H, W)`` or ``(B, H, W, C)``.

    A greyscale model (``channels == 1``) gets the luma, normalised with the mean of the preset's means
    and stds.
    """
    if channels == 1:
        luma = pixels.astype(np.float32) @ np.float32(LUMA)
        x = ((luma - np.float32(np.mean(preset.mean))) / np.float32(np.mean(preset.std)))[..., None]
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if layout == "NCHW" else x, dtype=dtype)
    mean, std = np.float32(preset.mean), np.float32(preset.std)
    if preset.bgr:
        pixels, mean, std = pixels[..., ::-1], mean[::-1], std[::-1]
    # Planes first, then in place: NumPy is slow to broadcast over a last axis of 3 (6x here).
    planar = layout == "NCHW"
    x = np.empty((pixels.shape[0], 3, *pixels.shape[1:3]) if planar else pixels.shape, dtype=np.float32)
    x[...] = pixels.transpose(0, 3, 1, 2) if planar else pixels
    per_channel = (slice(None), None, None) if planar else (slice(None),)
    x -= mean[per_channel]
    x /= std[per_channel]
    return x if dtype == np.float32 else x.astype(dtype)
