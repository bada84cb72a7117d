"""Writing a PFV run to a folder: per-image pictures, one mosaic per batch, ``summary.json``, ``index.html``.

Layout of the folder::

    images/<name>_pfv.png          PFV (component 1, 2, 3 = red, green, blue)
    images/<name>_overlay.png      PFV over a greyscale copy of the input (the paper's figures 6 and 7)
    images/<name>_activation.png   the activation map A^b, viridis, one scale per batch
    images/<name>_components.png   the unweighted components, normalised like PFV
    mosaics/batch_<k>.png          inputs over PFV, one column per image (the paper's figures 2 and 3)
    summary.json, index.html
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .core import normalise
from .files import atomic_path
from .render import Figure, Section, colour_map, mosaic, overlay, page, to_uint8, write_png
from .render.html import swatch

if TYPE_CHECKING:
    from .pipeline import PFVResult

PICTURES = ("pfv", "overlay", "activation", "components")
CAPTIONS = {
    "pfv": "PFV",
    "overlay": "PFV over the input",
    "activation": "activation map A<sup>b</sup>",
    "components": "components, unweighted",
}
COLOURS = ("#e33", "#3b3", "#36e")
TOP_K = 5


def safe_name(text: str) -> str:
    """A file-name-safe form of an image name (letters, digits, ``.``, ``_``, ``-``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "image"


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


def batch_pictures(result: PFVResult) -> dict[str, np.ndarray]:
    """The four ``(B, H0, W0, 3)`` uint8 pictures of every image of a result, by kind (see the module doc)."""
    pfv = to_uint8(result.rgb)
    # One activation scale per batch; the 99th percentile, as zero padding makes a few border pixels extreme.
    lo, hi = float(result.activation.min()), float(np.percentile(result.activation, 99))
    activation = np.stack([colour_map(a, lo, hi) for a in result.activation])
    shown = result.components[..., :3]
    components = np.zeros_like(pfv)
    components[..., : shown.shape[-1]] = to_uint8(normalise(shown))
    images = result.images
    overlays = np.stack([overlay(p, i) for p, i in zip(pfv, images)]) if images is not None else pfv
    return {"pfv": pfv, "overlay": overlays, "activation": activation, "components": components}


def colour_legend(ratios: Sequence[float]) -> str:
    """HTML: which colour is which component and how much variance it explains."""
    parts = [f"{swatch(c)}component {i + 1}: {r:.1%} of the variance" for i, (c, r) in enumerate(zip(COLOURS, ratios))]
    return "; ".join(parts)


def write_batch(out: Path, result: PFVResult, index: int, sources: Sequence[str] | None = None) -> tuple[dict, list[dict], dict[str, float]]:
    """Write the pictures of one analysis batch under ``out``.

    Returns:
        The batch's summary entry, one summary entry per image, and the seconds spent rendering arrays
        (``render``) and encoding PNG files (``png_encode``).
    """
    started = time.perf_counter()
    pictures = batch_pictures(result)
    rows = [list(result.images), list(pictures["pfv"])] if result.images is not None else [list(pictures["pfv"])]
    grid = mosaic(rows)
    rendered = time.perf_counter()

    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "mosaics").mkdir(parents=True, exist_ok=True)
    mosaic_path = f"mosaics/batch_{index}.png"
    write_png(out / mosaic_path, grid)
    top = result.top_k(TOP_K) if result.logits is not None else [None] * len(result.names)
    entries = []
    for b, name in enumerate(result.names):
        files = {}
        for kind in PICTURES:
            files[kind] = f"images/{name}_{kind}.png"
            write_png(out / files[kind], pictures[kind][b])
        entry: dict[str, Any] = {"name": name, "source": sources[b] if sources else None, "batch": index, "files": files}
        if top[b] is not None:
            entry["top5"] = [{"class": c, "label": label, "probability": round(p, 6)} for c, label, p in top[b]]
        entries.append(entry)
    encoded = time.perf_counter()
    pca = result.visualisation.pca
    batch = {
        "index": index,
        "images": list(result.names),
        "explained_variance_ratio": [round(float(r), 6) for r in pca.explained_variance_ratio],
        "solver": pca.solver,
        "mosaic": mosaic_path,
    }
    return batch, entries, {"render": rendered - started, "png_encode": encoded - rendered}


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
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(report_page(summary, title), encoding="utf-8")


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
        "Tapped layers feeding the activation map: " + (", ".join(f"<code>{escape(t)}</code>" for t in summary["taps"]) or "none")
        + f". Decomposed layer F<sub>N</sub>: <code>{escape(summary['final'])}</code>.",
        "Time per stage: " + ", ".join(f"{escape(k)} {v:.2f} s" for k, v in timings.items()) + ".",
    ]
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
            figures = [Figure(image["files"][kind], CAPTIONS[kind]) for kind in PICTURES]
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
