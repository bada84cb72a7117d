"""Writing a PFV run to a folder: per-image pictures, one mosaic per batch, ``summary.json``, ``index.html``.

Layout of the folder::

    images/<name>_pfv.png          PFV (component 1, 2, 3 = red, green, blue)
    images/<name>_overlay.png      PFV over a greyscale copy of the input (the paper's figures 6 and 7)
    images/<name>_activation.png   the weighting map (the paper's A^b, or another weighting's), viridis, one scale per batch
    images/<name>_components.png   the unweighted components, normalised like PFV
    mosaics/batch_<k>.png          inputs over PFV, one column per image (the paper's figures 2 and 3),
                                   shrunk to at most MOSAIC_WIDTH pixels wide
    summary.json, index.html
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .colouring import BatchResult
from .core.normalise import Scaling, ValueStats, apply_scaling, scaling
from .files import write_report
from .options import PICTURES
from .render import Figure, Section, colour_map, mosaic, overlay, page, to_uint8, write_png
from .render.html import swatch

CAPTIONS = {
    "pfv": "PFV",
    "overlay": "PFV over the input",
    "activation": "weighting map",
    "components": "components, unweighted",
}
COLOURS = ("#e33", "#3b3", "#36e")
TOP_K = 5


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
    """The ``(H0, W0, 3)`` uint8 pictures of image ``b`` of a result, by kind (see the module doc)."""
    pfv = to_uint8(result.rgb[b])
    pictures = {"pfv": pfv}
    if "overlay" in kinds:
        pictures["overlay"] = overlay(pfv, result.images[b]) if result.images is not None else pfv
    if "activation" in kinds:
        pictures["activation"] = colour_map(result.activation[b], *scales.activation)
    if "components" in kinds:
        shown = result.visualisation.shown_components[b]
        components = np.zeros_like(pfv)
        components[..., : shown.shape[-1]] = to_uint8(apply_scaling(shown, scales.components))
        pictures["components"] = components
    return pictures


def batch_pictures(result: BatchResult) -> dict[str, np.ndarray]:
    """The four pictures of every image of a result, ``(B, H0, W0, 3)`` uint8 by kind."""
    scales = batch_scales(result)
    per_image = [image_pictures(result, b, scales) for b in range(len(result.names))]
    return {kind: np.stack([p[kind] for p in per_image]) for kind in PICTURES}


def colour_legend(ratios: Sequence[float]) -> str:
    """HTML: which colour is which component and how much variance it explains."""
    parts = [f"{swatch(c)}component {i + 1}: {r:.1%} of the variance" for i, (c, r) in enumerate(zip(COLOURS, ratios))]
    return "; ".join(parts)


# The mosaic is the batch at a glance (the pictures are full size under images/): a batch of 32 at full size
# would be a 7,000-pixel-wide PNG with as many pixels as 64 of its pictures. Tiles shrink to
# fit MOSAIC_WIDTH; below MIN_TILE pixels the rows wrap instead.
MOSAIC_WIDTH = 2048
MOSAIC_GAP = 4
MIN_TILE = 48


def overview_rows(rows: list[list[np.ndarray]], max_width: int = MOSAIC_WIDTH) -> list[list[np.ndarray]]:
    """Rows of equally sized pictures (one row per kind, one column per image) arranged for a
    :func:`~pfv_onnx.render.mosaic` at most ``max_width`` pixels wide: shrunk (area interpolation), and
    wrapped into several bands of rows when even ``MIN_TILE``-pixel tiles would not fit; unchanged when
    they fit already."""
    columns = max(len(row) for row in rows)
    height, width = rows[0][0].shape[:2]
    per_band = max(1, (max_width + MOSAIC_GAP) // (min(MIN_TILE, width) + MOSAIC_GAP))
    if columns > per_band:
        rows = [row[start : start + per_band] for start in range(0, columns, per_band) for row in rows]
        columns = per_band
    tile = (max_width - (columns - 1) * MOSAIC_GAP) // columns
    if tile >= width:
        return rows
    size = (tile, max(round(height * tile / width), 1))
    return [[cv2.resize(picture, size, interpolation=cv2.INTER_AREA) for picture in row] for row in rows]


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
) -> BatchWrite:
    """Write the pictures of one analysis batch under ``out``: image by image, in ``pool`` when given
    (rendering and PNG encoding release the GIL, so the images of a batch are drawn in parallel while
    the next batch runs), or here and now. ``kinds``: which of :data:`PICTURES` to write per image.
    :meth:`BatchWrite.wait` returns when every file is there."""
    unknown = set(kinds) - set(PICTURES)
    if unknown:
        raise ValueError(f"unknown picture kinds {sorted(unknown)} (choose from {', '.join(PICTURES)})")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "mosaics").mkdir(parents=True, exist_ok=True)
    scales = batch_scales(result, kinds)
    run = pool.submit if pool is not None else (lambda fn, *args: fn(*args))
    mosaic_path = f"mosaics/batch_{index}.png"

    def mosaic_render():
        rows = ([list(result.images)] if result.images is not None else []) + [[to_uint8(x) for x in result.rgb]]
        return {"mosaic": mosaic(overview_rows(rows), gap=MOSAIC_GAP)}

    jobs = [run(_write_pictures, out, {"mosaic": mosaic_path}, mosaic_render)]
    top = result.top_k(TOP_K) if result.logits is not None else [None] * len(result.names)
    entries = []
    for b, name in enumerate(result.names):
        files = {kind: f"images/{name}_{kind}.png" for kind in PICTURES if kind in kinds}
        jobs.append(run(_write_pictures, out, files, functools.partial(image_pictures, result, b, scales, kinds)))
        entry: dict[str, Any] = {"name": name, "source": sources[b] if sources else None, "batch": index, "files": files}
        if top[b] is not None:
            entry["top5"] = [{"class": c, "label": label, "probability": round(p, 6)} for c, label, p in top[b]]
        entries.append(entry)
    pca = result.visualisation.pca
    batch = {
        "index": index,
        "images": list(result.names),
        "explained_variance_ratio": [round(float(r), 6) for r in pca.explained_variance_ratio],
        "solver": pca.solver,
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
    """The HTML report of a summary (see :func:`write_summary`)."""
    model = summary["model"]
    timings = summary.get("timings_s", {})
    intro = [
        f"Model <code>{escape(str(model['path']))}</code>, preset <code>{escape(model['preset'])}</code>, "
        f"provider {escape(', '.join(model['providers']))}. {len(summary['images'])} images in "
        f"{len(summary['batches'])} batch(es); "
        + (f"colours come from a basis fitted on {summary['basis']['images']} images, the same in every batch."
           if summary.get("basis") else "colours are relative to each batch."),
        "Tapped layers the weighting reads: " + (", ".join(f"<code>{escape(t)}</code>" for t in summary["taps"]) or "none")
        + f". Decomposed layer F<sub>N</sub>: <code>{escape(summary['final'])}</code>.",
        "Time per stage: " + ", ".join(f"{escape(k)} {v:.2f} s" for k, v in timings.items()) + ".",
    ]
    height, width = model["input"]["size"]
    picture_size = (width, height)
    by_batch: dict[int, list[dict]] = {}
    for image in summary["images"]:
        by_batch.setdefault(image["batch"], []).append(image)
    sections = []
    for batch in summary["batches"]:
        cards = []
        for image in by_batch.get(batch["index"], []):
            lines = [
                f"{i + 1}. {escape(str(t['label'] or t['class']))} ({t['probability']:.1%})" for i, t in enumerate(image.get("top5", []))
            ]
            figures = [Figure(image["files"][kind], CAPTIONS[kind], size=picture_size) for kind in PICTURES if kind in image["files"]]
            cards.append((image["name"], lines, figures))
        sections.append(
            Section(
                title=f"Batch {batch['index'] + 1}: {len(batch['images'])} images",
                paragraphs=[colour_legend(batch["explained_variance_ratio"]) + "."],
                figures=[Figure(batch["mosaic"], "inputs (top) and PFV (bottom)", wide=True)],
                cards=cards,
            )
        )
    return page(title, intro, sections)
