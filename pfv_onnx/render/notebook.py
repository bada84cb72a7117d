"""How PFV shows itself in a notebook: a compact text summary, an inline HTML view, PIL images.

The inline view is self-contained (pictures as ``data:`` URIs) and small: thumbnails of at most
:data:`THUMBNAIL` pixels, inputs as JPEG and PFV pictures as PNG, at most :data:`MAX_SHOWN` images.
"""

from __future__ import annotations

import base64
import io
from html import escape

import cv2
import numpy as np
from PIL import Image

from ..analyses.colouring import BatchResult
from ..util.console import plural
from ..images.labels import class_label
from . import encode_png, to_uint8
from .legend import colour_key
from .report import batch_scales, image_pictures

THUMBNAIL = 128
MAX_SHOWN = 32
MAX_NAMES = 4  # names in the text summary, each cut to 40 characters


def result_text(result: BatchResult) -> str:
    """One line per fact: the model, the shapes, the first names, the variance shares, the top class."""
    count = len(result.names)
    names = ", ".join(_short(n) for n in result.names[:MAX_NAMES]) + (f", ... ({count - MAX_NAMES} more)" if count > MAX_NAMES else "")
    ratios = ", ".join(f"{r:.1%}" for r in result.explained_variance_ratio)
    lines = [
        f"PFV of {plural(count, 'image')}: {names}",
        f"  model {_short(str(result.description.get('model', {}).get('path')), 120)}",
        f"  rgb {tuple(result.rgb.shape)} float32, weighting map {tuple(result.activation.shape)}",
        f"  components' share of the variance: {ratios}",
    ]
    if result.logits is not None:
        best = [row[0] for row in result.top_k(1)[:MAX_NAMES]]
        lines.append("  top class: " + ", ".join(f"{class_label(index, label)} ({p:.0%})" for index, label, p in best) + (", ..." if count > MAX_NAMES else ""))
    return "\n".join(lines)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _data_uri(picture: np.ndarray, jpeg: bool) -> str:
    if jpeg:
        buffer = io.BytesIO()
        Image.fromarray(picture).save(buffer, format="JPEG", quality=85)
        return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return "data:image/png;base64," + base64.b64encode(encode_png(picture)).decode("ascii")


def _thumbnail(picture: np.ndarray) -> np.ndarray:
    height, width = picture.shape[:2]
    scale = THUMBNAIL / max(height, width)
    if scale >= 1:
        return picture
    return cv2.resize(picture, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)


def result_html(result: BatchResult) -> str:
    """HTML: each image's input over its PFV picture, captioned with its name and top class, then the colour key."""
    shown = min(len(result.names), MAX_SHOWN)
    top = result.top_k(1) if result.logits is not None else None
    cells = []
    for b in range(shown):
        pictures = [] if result.images is None else [_data_uri(_thumbnail(result.images[b]), jpeg=True)]
        pictures.append(_data_uri(_thumbnail(to_uint8(result.rgb[b])), jpeg=False))
        caption = escape(result.names[b]) + (f"<br>{escape(class_label(top[b][0][0], top[b][0][1]))}" if top else "")
        images = "".join(f'<img src="{uri}" style="display:block;margin:1px">' for uri in pictures)
        cells.append(f'<div style="display:inline-block;vertical-align:top;margin:2px;font-size:11px;max-width:{THUMBNAIL}px">{images}{caption}</div>')
    more = f"<p>... and {plural(len(result.names) - shown, 'more image')} (see <code>result.save(folder)</code>).</p>" if shown < len(result.names) else ""
    key = colour_key(result.explained_variance_ratio, result.visualisation.neutral)
    return f"<div><div>{''.join(cells)}</div>{more}<p style='font-size:12px'>{key}</p></div>"


def to_pil(result: BatchResult, kind: str = "pfv") -> list[Image.Image]:
    """The pictures of ``kind`` (``pfv``, ``overlay``, ``activation`` or ``components``) as PIL images, in order."""
    scales = batch_scales(result, (kind,))
    return [Image.fromarray(image_pictures(result, b, scales, (kind,))[kind]) for b in range(len(result.names))]
