"""How PFV's results show themselves in a notebook: a compact text summary, an inline HTML view, PIL images.

The inline views are self-contained (pictures as ``data:`` URIs, styles inline) and small. A batch's: thumbnails
of at most :data:`THUMBNAIL` pixels, inputs as JPEG and PFV pictures as PNG, at most :data:`MAX_SHOWN` images.
A debug's, survey's or randomisation test's: its text over its main figure as one JPEG at most
:data:`PANEL_WIDTH` pixels wide. An atlas's: per component and side one JPEG strip of its leading images and one of its patches, each picture
:data:`ATLAS_THUMBNAIL` pixels, at most :data:`ATLAS_SHOWN` a strip: under :data:`MAX_ATLAS_HTML` bytes for 3 components.
"""

from __future__ import annotations

import base64
import io
from html import escape

import cv2
import numpy as np
from PIL import Image

from ..analyses.atlas import Atlas
from ..analyses.colouring import BatchResult
from ..util.console import plural
from ..images.labels import class_label
from . import encode_png, to_uint8
from .legend import colour_key, component_line, side_meaning
from .report import batch_scales, image_pictures

THUMBNAIL = 128
MAX_SHOWN = 32
MAX_NAMES = 4  # names in the text summary, each cut to 40 characters
# A cell is as wide as its pictures, whatever its caption: a long name is cut with "..." (whole in its
# tooltip) rather than running into the next cell.
CELL_STYLE = f"display:inline-block;vertical-align:top;margin:2px;font-size:11px;width:{THUMBNAIL + 2}px;overflow:hidden"
LINE_STYLE = "white-space:nowrap;overflow:hidden;text-overflow:ellipsis"
ATLAS_THUMBNAIL = 64
ATLAS_SHOWN = 8  # pictures in a strip, whatever the atlas's top
# An atlas's inline view of 3 components stays under this (a test checks it on the shipped 80 images); each
# further component adds about a third of it.
MAX_ATLAS_HTML = 200_000
PANEL_WIDTH = 720


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


def caption_lines(lines: list[str]) -> str:
    """HTML: each line of text on its own line, cut to the cell's width, shown whole on hover."""
    return "".join(f'<div style="{LINE_STYLE}" title="{escape(line, quote=True)}">{escape(line)}</div>' for line in lines)


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
        caption = caption_lines([result.names[b]] + ([class_label(top[b][0][0], top[b][0][1])] if top else []))
        images = "".join(f'<img src="{uri}" style="display:block;margin:1px">' for uri in pictures)
        cells.append(f'<div style="{CELL_STYLE}">{images}{caption}</div>')
    more = f"<p>... and {plural(len(result.names) - shown, 'more image')} (see <code>result.save(folder)</code>).</p>" if shown < len(result.names) else ""
    key = colour_key(result.explained_variance_ratio, result.visualisation.neutral)
    return f"<div><div>{''.join(cells)}</div>{more}<p style='font-size:12px'>{key}</p></div>"


def to_pil(result: BatchResult, kind: str = "pfv") -> list[Image.Image]:
    """The pictures of ``kind`` (``pfv``, ``overlay``, ``activation`` or ``components``) as PIL images, in order."""
    scales = batch_scales(result, (kind,))
    return [Image.fromarray(image_pictures(result, b, scales, (kind,))[kind]) for b in range(len(result.names))]


def atlas_text(atlas: Atlas) -> str:
    """One line for the data, one per component (variance share, stability, each side's purity), one saying where the rest is."""
    summary = atlas.summary
    data = summary["data"]
    classes = f" of {plural(len(data['classes']), 'class')}" if data["classes"] else ""
    fitted = "a basis fitted on them" if summary["basis_fitted_here"] else f"a basis fitted on {plural(summary['basis']['images'], 'image')}"
    lines = [f"Atlas of {plural(len(summary['components']), 'component')} over {plural(data['images'], 'image')}{classes}, {fitted}"]
    for c in summary["components"]:
        stability = "-" if c["stability"] is None else f"{c['stability']:.2f}"
        sides = "; ".join(f"{side['side']}: {side['purity']:.0%} {_short(str(side['majority']), 24)} (chance {side['chance']:.0%})"
                          for side in c["sides"] if side["purity"] is not None)
        lines.append(f"  component {c['component']}: {c['explained_variance_ratio']:.1%} of the variance, stability {stability}" + (f"; {sides}" if sides else ""))
    if summary["skipped"]:
        lines.append(f"  {plural(len(summary['skipped']), 'file')} skipped (see .summary['skipped'])")
    lines.append("  .save(folder) writes the atlas page; .summary holds the data, .images and .patches the pictures")
    return "\n".join(lines)


def atlas_html(atlas: Atlas) -> str:
    """HTML: per component its colour, share and stability, and per side a strip of its leading images
    over a strip of its patches, with the leading class."""
    parts = [f"<p>{escape(atlas_text(atlas).splitlines()[0])}.</p>"]
    for c in atlas.summary["components"]:
        j = c["component"]
        stability = "not measured" if c["stability"] is None else f"{c['stability']:.2f}"
        parts.append(f"<p style='margin:.6em 0 .2em'><b>{component_line(j, c['explained_variance_ratio'])}</b>, stability {stability}</p>")
        for s, side in enumerate(c["sides"]):
            note = f": {side['purity']:.0%} <i>{escape(str(side['majority']))}</i> (chance {side['chance']:.0%})" if side["purity"] is not None else ""
            strips = "".join(f'<img src="{_data_uri(_strip(pictures), jpeg=True)}" title="{title}" alt="{title}" style="display:block;margin:1px">'
                             for pictures, title in ((atlas.images[j - 1, s][:ATLAS_SHOWN], "the images where it is strongest"),
                                                     (atlas.patches[j - 1, s][:ATLAS_SHOWN], "where it peaks")) if pictures)
            parts.append(f"<div style='display:inline-block;vertical-align:top;margin:0 1em .4em 0;font-size:12px'>"
                         f"{escape(side_meaning(j, side['side']))} ({side['side']} side){note}{strips}</div>")
    return f"<div>{''.join(parts)}</div>"


def _strip(pictures: list[np.ndarray]) -> np.ndarray:
    """``(H, W, 3)`` uint8 pictures side by side, each :data:`ATLAS_THUMBNAIL` pixels square, 2 white pixels apart."""
    size, gap = ATLAS_THUMBNAIL, 2
    strip = np.full((size, len(pictures) * (size + gap) - gap, 3), 255, np.uint8)
    for i, picture in enumerate(pictures):
        strip[:, i * (size + gap) : i * (size + gap) + size] = cv2.resize(picture, (size, size), interpolation=cv2.INTER_AREA)
    return strip


def panel_html(text: str, picture: np.ndarray) -> str:
    """HTML: ``text`` (a result's summary), line by line, over ``picture`` (its main figure, ``(H, W, 3)``
    uint8), scaled down to at most :data:`PANEL_WIDTH` pixels wide."""
    height, width = picture.shape[:2]
    if width > PANEL_WIDTH:
        picture = cv2.resize(picture, (PANEL_WIDTH, max(1, round(height * PANEL_WIDTH / width))), interpolation=cv2.INTER_AREA)
    lines = "".join(f"<div>{escape(line)}</div>" for line in text.splitlines())
    return f"<div><div style='font-size:12px;white-space:pre-wrap'>{lines}</div><img src=\"{_data_uri(picture, jpeg=True)}\" style='display:block;max-width:100%'></div>"
