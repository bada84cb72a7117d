"""Writing a PFV run to a folder: per-image pictures, one mosaic per batch, ``summary.json``, ``index.html``.

Layout of the folder (batches numbered from 1, the same in the page, the files and ``summary.json``)::

    images/<name>_pfv.png          PFV (component 1, 2, 3 = red, green, blue)
    images/<name>_overlay.png      PFV over a greyscale copy of the input (the paper's figures 6 and 7)
    images/<name>_activation.png   the weighting map (the paper's A^b, or another weighting's), viridis, one scale per batch
    images/<name>_components.png   the unweighted components, normalised like PFV: the first three as RGB,
                                   each later one in grey beside them
    mosaics/batch_<n>.png          each image's input over its PFV, labelled with its name and top class
    summary.json, index.html
"""

from __future__ import annotations

import functools
import math
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..analyses.colouring import BatchResult
from ..util.console import plural
from ..core import resize_bilinear
from ..core.atlas import image_strengths
from ..core.normalise import Scaling, ValueStats, apply_scaling, scaling
from ..core.visualise import RGB
from ..util.files import output_folder, write_report
from ..images.labels import class_label
from ..options import PICTURES
from . import Figure, Section, colour_map, labelled_grid, overlay, page, to_uint8, write_png
from .html import colour_bar, relative_link
from .legend import colour_key, side_meaning

CAPTIONS = {
    "pfv": "PFV",
    "overlay": "PFV over the input",
    "activation": "weighting map",
    "components": "components, unweighted",
}
TOP_K = 5
# Images shown per component and side as the batch's strongest.
STRONGEST = 3


# Output names are kept well under the 255 bytes a file name may have, the picture kind's suffix included.
MAX_NAME = 100


def safe_name(text: str) -> str:
    """A file-name-safe form of an image name (letters, digits, ``.``, ``_``, ``-``), at most
    :data:`MAX_NAME` characters: a longer one keeps its start and ends in a short hash of the whole name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "image"
    if len(name) <= MAX_NAME:
        return name
    return f"{name[: MAX_NAME - 13]}_{hashlib.sha256(text.encode('utf-8', 'surrogateescape')).hexdigest()[:12]}"


def unique_names(stems: Sequence[str]) -> list[str]:
    """Safe, distinct names in order: a repeated stem gets ``_2``, ``_3``, ..."""
    used: set[str] = set()
    names = []
    for stem in stems:
        base = name = safe_name(stem)
        k = 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        names.append(name)
    return names


@dataclass(frozen=True)
class BatchScales:
    """What a batch's pictures share: the activation colour map's range and the components' normalisation."""

    activation: tuple[float, float]
    components: Scaling | None


def activation_range(stats: ValueStats) -> tuple[float, float]:
    """The colour scale of activation maps: from the lowest value to three standard deviations above the
    mean (zero padding makes a few border pixels extreme), or the highest value if that is lower."""
    mean, std = stats.mean_std()
    return stats.lo, min(stats.hi, mean + 3 * std)


def batch_scales(result: BatchResult, kinds: Sequence[str] = PICTURES) -> BatchScales:
    """The scales of a batch's activation and component pictures: the fitted basis's, when it coloured the
    batch (then they mean the same in every batch), else the batch's own."""
    basis = result.visualisation.basis
    if basis is not None and basis.activation is not None:
        return BatchScales(activation_range(basis.activation), basis.components_scaling())
    # The full-size components are drawn only when asked for: computing them is a pass over the batch.
    components = scaling(result.visualisation.shown_components) if "components" in kinds else None
    return BatchScales(activation_range(ValueStats.of(result.activation)), components)


def image_pictures(result: BatchResult, b: int, scales: BatchScales, kinds: Sequence[str] = PICTURES) -> dict[str, np.ndarray]:
    """The uint8 pictures of image ``b`` of a result, by kind (see the module doc): ``(H0, W0, 3)``, but the
    components picture is ``(H0, W0 * (k - 2), 3)`` for ``k > 3`` components, the first three as RGB and
    each later one in grey beside them, on the same scale."""
    pfv = to_uint8(result.rgb[b])
    pictures = {"pfv": pfv}
    if "overlay" in kinds:
        pictures["overlay"] = overlay(pfv, result.images[b]) if result.images is not None else pfv
    if "activation" in kinds:
        pictures["activation"] = colour_map(result.activation[b], *scales.activation)
    if "components" in kinds:
        vis = result.visualisation
        shown = vis.shown_components[b]
        components = np.zeros_like(pfv)
        components[..., : shown.shape[-1]] = to_uint8(apply_scaling(shown, scales.components))
        panels = [components]
        if vis.scores.shape[-1] > RGB:
            later = to_uint8(apply_scaling(resize_bilinear(vis.scores[b : b + 1, ..., RGB:], pfv.shape[:2])[0], scales.components))
            panels += [np.repeat(later[..., i : i + 1], 3, axis=-1) for i in range(later.shape[-1])]
        pictures["components"] = np.hstack(panels)
    return pictures


def batch_pictures(result: BatchResult) -> dict[str, np.ndarray]:
    """The four pictures of every image of a result, ``(B, ...)`` uint8 by kind."""
    scales = batch_scales(result)
    per_image = [image_pictures(result, b, scales) for b in range(len(result.names))]
    return {kind: np.stack([p[kind] for p in per_image]) for kind in PICTURES}


def strongest_in_batch(result: BatchResult, count: int = STRONGEST) -> list[dict[str, Any]]:
    """Per component, the names of the batch's ``count`` images where each side of it is strongest (the
    mean of its signed scores over the image's cells); empty for a batch of one image."""
    if len(result.names) < 2:
        return []
    mean = image_strengths(result.visualisation.scores)[0]  # (B, k, 2)
    order = np.argsort(-mean, axis=0, kind="stable")[:count]
    return [
        {"component": j + 1, **{side: [result.names[b] for b in order[:, j, s]] for s, side in enumerate(("positive", "negative"))}}
        for j in range(mean.shape[1])
    ]


# The mosaic is the batch at a glance (the pictures are full size under images/): each image's input over
# its PFV with its name and top class, MOSAIC_COLUMNS to a row (a row of them fits a report's width, so
# captions stay readable) up to MOSAIC_READABLE images, about as many columns as rows past that, and at most
# MOSAIC_WIDTH pixels wide.
MOSAIC_WIDTH = 2048
MOSAIC_GAP = 4
MOSAIC_COLUMNS = 6
MOSAIC_READABLE = 64


def labelled_mosaic(rgb: np.ndarray, images: np.ndarray | None, captions: Sequence[str]) -> np.ndarray:
    """``(B, H0, W0, 3)`` float PFV pictures, their ``(B, H0, W0, 3)`` uint8 inputs above them when given,
    as captioned tiles in rows (see :data:`MOSAIC_COLUMNS`), shrunk (area interpolation) to fit
    :data:`MOSAIC_WIDTH`: a uint8 RGB picture."""
    count, height, width = rgb.shape[:3]
    columns = min(count, MOSAIC_COLUMNS if count <= MOSAIC_READABLE else math.ceil(math.sqrt(count)))
    tile_width = min(width, (MOSAIC_WIDTH - (columns - 1) * MOSAIC_GAP) // columns)
    size = (tile_width, max(round(height * tile_width / width), 1))

    def shrink(picture: np.ndarray) -> np.ndarray:
        return picture if size == (width, height) else cv2.resize(picture, size, interpolation=cv2.INTER_AREA)

    tiles = [shrink(to_uint8(x)) for x in rgb]
    if images is not None:
        tiles = [np.vstack([shrink(image), tile]) for image, tile in zip(images, tiles)]
    rows, labels = [], []
    for start in range(0, count, columns):  # the last row filled out with blank tiles
        row, caption = tiles[start : start + columns], list(captions[start : start + columns])
        rows.append(row + [np.full_like(tiles[0], 255)] * (columns - len(row)))
        labels.append(caption + [""] * (columns - len(caption)))
    return labelled_grid(rows, captions=labels, gap=MOSAIC_GAP)


class BatchWrite:
    """The files of one batch being written: summary entries now, stage timings once written."""

    def __init__(self, batch: dict, images: list[dict], jobs: list):
        self.batch = batch
        self.images = images
        self._jobs = jobs

    def complete(self) -> bool:
        """Whether every file was written (no job pending, cancelled or failed)."""
        return all(
            not isinstance(job, Future) or (job.done() and not job.cancelled() and job.exception() is None) for job in self._jobs
        )

    def wait(self) -> dict[str, float]:
        """Block until every file is written; the seconds spent rendering and encoding, summed."""
        timings = {"render": 0.0, "png_encode": 0.0}
        for job in self._jobs:
            for stage, seconds in (job.result() if isinstance(job, Future) else job).items():
                timings[stage] += seconds
        return timings


def _write_pictures(out: Path, files: dict[str, str], render) -> dict[str, float]:
    started = time.perf_counter()
    pictures = render()
    rendered = time.perf_counter()
    for kind, relative in files.items():
        write_png(out / relative, pictures[kind])
    return {"render": rendered - started, "png_encode": time.perf_counter() - rendered}


def write_batch(
    out: Path,
    result: BatchResult,
    index: int,
    sources: Sequence[str] | None = None,
    pool: Executor | None = None,
    kinds: Sequence[str] = PICTURES,
    classes: Sequence[str | None] | None = None,
) -> BatchWrite:
    """Write the pictures of the analysis batch ``index`` (from 0; batch number ``index + 1`` in the files
    and the summary) under ``out``: image by image, in ``pool`` when given (rendering and PNG encoding
    release the GIL, so the images of a batch are drawn in parallel while the next batch runs), or here and
    now. ``kinds``: which of :data:`PICTURES` to write per image; ``classes``: each image's dataset class,
    when known. :meth:`BatchWrite.wait` returns when every file is there."""
    unknown = set(kinds) - set(PICTURES)
    if unknown:
        raise ValueError(f"unknown picture kinds {sorted(unknown)} (choose from {', '.join(PICTURES)})")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "mosaics").mkdir(parents=True, exist_ok=True)
    scales = batch_scales(result, kinds)
    run = pool.submit if pool is not None else (lambda fn, *args: fn(*args))
    number = index + 1
    mosaic_path = f"mosaics/batch_{number}.png"
    top = result.top_k(TOP_K) if result.logits is not None else [None] * len(result.names)
    captions = [
        ": ".join(x for x in (name, class_label(best[0][0], best[0][1]) if best else None) if x) for name, best in zip(result.names, top)
    ]

    def mosaic_render():
        return {"mosaic": labelled_mosaic(result.rgb, result.images, captions)}

    jobs = [run(_write_pictures, out, {"mosaic": mosaic_path}, mosaic_render)]
    entries = []
    for b, name in enumerate(result.names):
        files = {kind: f"images/{name}_{kind}.png" for kind in PICTURES if kind in kinds}
        jobs.append(run(_write_pictures, out, files, functools.partial(image_pictures, result, b, scales, kinds)))
        entry: dict[str, Any] = {"name": name, "source": sources[b] if sources else None, "batch": number, "files": files}
        if classes is not None and classes[b] is not None:
            entry["class"] = classes[b]
        if top[b] is not None:
            entry["top5"] = [{"class": c, "label": label, "probability": round(p, 6)} for c, label, p in top[b]]
        entries.append(entry)
    vis = result.visualisation
    batch = {
        "number": number,
        "images": list(result.names),
        "explained_variance_ratio": [round(float(r), 6) for r in vis.pca.explained_variance_ratio],
        "solver": vis.pca.solver,
        "neutral": round(vis.neutral, 4),
        "activation_range": [round(float(v), 6) for v in scales.activation],
        "strongest": strongest_in_batch(result),
        "mosaic": mosaic_path,
    }
    return BatchWrite(batch, entries, jobs)


def build_summary(description: dict, batches: list[dict], images: list[dict], timings: dict[str, float], **extra) -> dict:
    """``summary.json``'s content: the model and options (:meth:`pfv_onnx.PFV.describe`), the batches, the
    images, and the seconds per stage."""
    return {
        **description,
        "batches": batches,
        "images": images,
        "timings_s": {stage: round(seconds, 4) for stage, seconds in timings.items()},
        **extra,
    }


def write_summary(out: Path, summary: dict, title: str = "PFV report") -> None:
    """Write ``summary.json`` and the ``index.html`` that shows it, each atomically."""
    write_report(out, summary, report_page(summary, title))


def report_page(summary: dict, title: str) -> str:
    """The HTML report of a summary (see :func:`write_summary`): what the colours mean first, the batches,
    and the model, layers, options and timings in a collapsed section at the end."""
    model = summary["model"]
    images, batches = summary["images"], summary["batches"]
    classes = sorted({i["class"] for i in images if i.get("class")})
    basis = summary.get("basis")
    intro = [
        f"{plural(len(images), 'image')} in {plural(len(batches), 'batch')}"
        + (f", from {plural(len(classes), 'class')} ({escape(', '.join(classes))})" if classes else "") + ". "
        + (f"Colours come from a basis fitted on {plural(basis['images'], 'image')}: they mean the same in every batch."
           if basis else "Colours are relative to each batch: compare colours within a batch, not across batches."),
        "Each picture shows where the network's strongest contrasting features lie: components 1, 2 and 3 of the "
        "final layer's features drive red, green and blue, weighted by how strongly the network responds there.",
    ]
    height, width = model["input"]["size"]
    by_batch: dict[int, list[dict]] = {}
    for image in images:
        by_batch.setdefault(image["batch"], []).append(image)
    atlas = summary.get("atlas")
    sections = [_batch_section(batch, by_batch.get(batch["number"], []), (width, height), atlas) for batch in batches]
    sections.append(_details(summary))
    return page(title, intro, sections)


def _batch_section(batch: dict, images: list[dict], picture_size: tuple[int, int], atlas: dict | None = None) -> Section:
    """A batch: its colour key, the strongest images per component (and what the atlas says of it), the
    mosaic, one card per image."""
    overlay_of = {i["name"]: i["files"].get("overlay", i["files"].get("pfv")) for i in images}
    paragraphs = [colour_key(batch["explained_variance_ratio"], batch.get("neutral"))]
    for entry in batch.get("strongest", []):
        j = entry["component"]
        sides = []
        for side in ("positive", "negative"):
            thumbs = " ".join(  # the image's name where its pictures were not written
                f'<img src="{escape(relative_link(overlay_of[name]), quote=True)}" alt="{escape(name, quote=True)}" title="{escape(name, quote=True)}" '
                f'width="64" height="64" style="vertical-align:middle;margin:1px">' if overlay_of.get(name) else f"<code>{escape(name)}</code>"
                for name in entry[side]
            )
            sides.append(f"{escape(side_meaning(j, side))}: {thumbs}")
        paragraphs.append(f"Component {j}, strongest in this batch. " + " &nbsp; ".join(sides) + _atlas_note(atlas, j))
    lo, hi = batch.get("activation_range", (0.0, 1.0))
    cards = []
    for image in images:
        lines = [f"class <i>{escape(image['class'])}</i>"] if image.get("class") else []
        lines += [f"{i + 1}. {escape(class_label(t['class'], t['label']))} ({t['probability']:.1%})" for i, t in enumerate(image.get("top5", []))]
        figures = []
        for kind in PICTURES:
            if kind in image["files"]:
                caption = CAPTIONS[kind] + (colour_bar(lo, hi) if kind == "activation" else "")
                size = None if kind == "components" else picture_size  # wider beyond three components
                figures.append(Figure(image["files"][kind], caption, size=size))
        cards.append((image["name"], lines, figures))
    count = len(batch["images"])
    return Section(
        title=f"Batch {batch['number']}: {plural(count, 'image')}",
        paragraphs=paragraphs,
        figures=[Figure(batch["mosaic"], "each image over its PFV picture, with its name and top class", wide=True)],
        cards=cards,
    )


def _atlas_note(atlas: dict | None, j: int) -> str:
    """HTML: what the atlas says of component ``j``, with a link to its card; empty without an atlas."""
    entry = next((c for c in atlas["components"] if c["component"] == j), None) if atlas else None
    if entry is None:
        return ""
    said = []
    for side in entry["sides"]:
        words = escape(side_meaning(j, side["side"]))
        if side.get("majority"):
            words += f": mostly <i>{escape(str(side['majority']))}</i>" + (f" ({side['purity']:.0%})" if side.get("purity") is not None else "")
        if side.get("classes_up"):
            words += "; pushes up " + escape(", ".join(side["classes_up"]))
        said.append(words)
    link = escape(relative_link(atlas["page"], entry["anchor"]), quote=True)
    return f'<br>Over the dataset (<a href="{link}">atlas card</a>): ' + "; ".join(said) + "."


def _details(summary: dict) -> Section:
    """The collapsed section: model, layers, options, solvers and timings."""
    model = summary["model"]
    options = summary.get("options", {})
    rows = [
        ["model", f"<code>{escape(str(model['path']))}</code> (SHA-256 {escape(str(model['sha256'])[:16])}...)"],
        ["input", escape(f"{model['input']['name']}, {model['input']['layout']}, {model['input']['size'][0]} x {model['input']['size'][1]}")],
        ["preset", escape(str(model["preset"]))],
        ["providers", escape(", ".join(model["providers"]))],
        ["layers the weighting reads", ", ".join(f"<code>{escape(t)}</code>" for t in summary["taps"]) or "none"],
        ["decomposed layer F<sub>N</sub>", f"<code>{escape(summary['final'])}</code>"],
        *[[escape(k), escape(str(v))] for k, v in options.items()],
        ["PCA solvers", escape(", ".join(sorted({b["solver"] for b in summary["batches"]})))],
        *[[f"time: {escape(k)}", f"{v:.2f} s"] for k, v in summary.get("timings_s", {}).items()],
    ]
    return Section("Model, layers, options and timings", table=[["", ""], *rows], collapsed=True)


def save_page(write: Callable[[Path, Any], None], result: Any, out: str | Path, overwrite: bool = False) -> dict[str, Any]:
    """Write ``result`` (an analysis's result, with its ``summary``) into the folder ``out`` with ``write`` (a
    page writer such as :func:`pfv_onnx.render.atlas.write_atlas`) and return its summary. A folder that
    holds anything is refused unless ``overwrite``."""
    write(output_folder(out, overwrite), result)
    return result.summary
