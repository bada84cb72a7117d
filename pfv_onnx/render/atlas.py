"""The atlas's page: ``summary.json``, one strip of leading images and one of leading patches per component
and side under ``cards/``, and ``index.html``; what ``pfv-onnx atlas`` and ``Atlas.save`` write."""

from __future__ import annotations

from html import escape
from pathlib import Path

import cv2

from ..analyses.atlas import Atlas, card_anchor
from ..analyses.basis import save_basis
from ..images.labels import class_label
from ..util.console import plural
from ..util.files import write_report
from . import write_png
from .html import Figure, Section, page
from .images import labelled_grid
from .legend import component_line, side_meaning

THUMBNAIL = 112
# The basis an atlas fitted itself, saved beside its page: explain --basis DIR/basis.npz --atlas DIR.
BASIS_FILE = "basis.npz"
PATCH = 96


def card_files(j: int, side: str) -> tuple[str, str]:
    """The strips of component ``j`` (from 1) and ``side``: leading images, leading patches."""
    return f"cards/component_{j}_{side}_images.png", f"cards/component_{j}_{side}_patches.png"


def write_atlas(out: Path, result: Atlas) -> None:
    """``cards/*.png``, ``summary.json`` and ``index.html`` in the folder ``out`` (made and checked by the
    caller), and :data:`BASIS_FILE` when the atlas fitted its basis itself (reports colour with it and link
    to the atlas)."""
    summary = result.summary
    (out / "cards").mkdir(exist_ok=True)
    sections = []
    for c in summary["components"]:
        j = c["component"]
        stability = "not measured (too little data)" if c["stability"] is None else f"{c['stability']:.2f}"
        paragraphs = [f"{component_line(j, c['explained_variance_ratio'])}; stability {stability} "
                      "(|cosine| between the component fitted on two halves of the data: 1 the same direction)."]
        cards = []
        for side_index, side in enumerate(c["sides"]):
            images_file, patches_file = card_files(j, side["side"])
            thumbs = [cv2.resize(x, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA) for x in result.images[j - 1, side_index]]
            patches = [cv2.resize(x, (PATCH, PATCH), interpolation=cv2.INTER_AREA) for x in result.patches[j - 1, side_index]]
            write_png(out / images_file, labelled_grid([thumbs], captions=[[_caption(e) for e in side["images"]]]))
            write_png(out / patches_file, labelled_grid([patches], captions=[[_caption(e) for e in side["patches"]]]))
            lines = []
            if side["purity"] is not None:
                lines.append(f"leading images: {side['purity']:.0%} from <i>{escape(str(side['majority']))}</i> "
                             f"(chance {side['chance']:.0%}: that class's share of the data)")
            if "classes_up" in side:
                lines.append("classes the head pushes up: " + _classes(side["classes_up"]))
                lines.append("and down: " + _classes(side["classes_down"]))
            figures = [Figure(images_file, "the images where it is strongest", wide=True), Figure(patches_file, "where it peaks", wide=True)]
            cards.append((f"{side_meaning(j, side['side'])} ({side['side']} side)", lines, figures))
        sections.append(Section(f"Component {j}", paragraphs, cards=cards, anchor=card_anchor(j)))
    data, field = summary["data"], summary["receptive_field"]
    intro = [
        # the file's name only: the page is meant to be shared, and its folder says nothing to a reader
        f"Model <code>{escape(Path(summary['model']['path']).name)}</code>; {plural(data['images'], 'image')}"
        + (f" of {plural(len(data['classes']), 'class')}" if data["classes"] else "")
        + (f"; the basis was fitted on them and saved as <code>{BASIS_FILE}</code> here (<code>pfv-onnx explain ... --basis "
           f"{BASIS_FILE} --atlas .</code> from this folder colours a report with it and links it here)"
           if summary["basis_fitted_here"] else f"; basis fitted on {plural(summary['basis']['images'], 'image')}")
        + ".",
        f"Patches: {field['patch']} pixels around the strongest cell of F<sub>N</sub> (cells {field['stride']} pixels apart, "
        f"theoretical receptive field {field['size']} pixels, capped at half the image).",
    ]
    if not summary["head"]:
        intro.append("The model has no linear head after F<sub>N</sub> (global average pooling, then one linear layer): no classes per component.")
    write_report(out, summary, page("pfv-onnx atlas", intro, sections))
    if summary["basis_fitted_here"] and result.basis is not None:
        save_basis(out / BASIS_FILE, result.basis, result.basis_header)


def _caption(entry: dict) -> str:
    return str(entry["class"] if entry["class"] is not None else Path(entry["path"]).stem)


def _classes(ranked: list[dict]) -> str:
    return ", ".join(escape(class_label(c["class"], c["label"])) for c in ranked)
