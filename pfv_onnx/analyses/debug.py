"""``pfv-onnx debug``: why was this image misclassified? (paper section 5.1, figure 5)

The failed image is analysed in one batch with three examples of its true class and three of the class
it was taken for, so the colours contrast exactly these. For every image, the distribution of the three
components (red, green, blue) over its foreground (:func:`pfv_onnx.core.metrics.foreground`: the 30% of
pixels with the highest activation map) is shown as bars. Compared with each class's mean distribution,
a component whose share differs by :data:`MARGIN` or more is one the failed image *lacks* or has *in excess*.
Where: the foreground pixels of the failed image where that component lies more than one standard
deviation (of its values over the class examples' foregrounds) below, or above, the class's mean; they are
painted in the component's colour, and named by the third of the image (3 x 3 grid) that holds most of them.

The command weights by the paper's ``A^b`` unless told otherwise (:data:`DEFAULT_WEIGHTING`): to say where a
part is *missing* the weighting must still weigh the place where it is missing, and the ``focus`` weighting
fades exactly such featureless places (a covered quarter of the image is as dark as the background).

:func:`debug` returns a :class:`Debug` and writes nothing; :mod:`pfv_onnx.render.debug` writes its page, and
:meth:`pfv_onnx.PFV.debug` returns it as a :class:`~pfv_onnx.results.DebugResult` that saves and shows itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.metrics import FOREGROUND_SHARE, colour_distribution, foreground
from ..errors import PFVError
from ..images.preprocess import expand_inputs
from .colouring import BatchResult

EXAMPLES = 3
DEFAULT_WEIGHTING = "paper"
MARGIN = 0.05
COMPONENT_NAMES = ("red", "green", "blue")
REGIONS = ("top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right")


@dataclass(repr=False)
class Debug:
    """A debug run: ``summary`` (what ``summary.json`` holds), the batch's PFV ``batch`` (the failed image
    first, then the true class's examples, then the predicted class's), each image's ``name`` and foreground
    ``distributions`` ``(3,)``, and per class (``true``, ``predicted``) the ``(H, W)`` boolean masks of where
    the failed image differs, each with its component (0, 1, 2)."""

    summary: dict[str, Any]
    batch: BatchResult
    names: list[str]
    distributions: list[np.ndarray]
    where: dict[str, list[tuple[np.ndarray, int]]]

    def __repr__(self) -> str:
        top = self.summary["prediction"][0] if self.summary["prediction"] else None
        predicted = f", predicted {top['label'] or top['class']} ({top['probability']:.0%})" if top else ""
        lines = [f"Debug of {Path(self.summary['image']).name}{predicted}", *(f"  {line}" for line in self.summary["verdict"])]
        return "\n".join(lines)


def region_of(mask: np.ndarray) -> str:
    """The ninth of the picture (3 x 3 grid) that holds most of the ``(H, W)`` mask's pixels."""
    height, width = mask.shape
    counts = [mask[i * height // 3 : (i + 1) * height // 3, j * width // 3 : (j + 1) * width // 3].sum() for i in range(3) for j in range(3)]
    return REGIONS[int(np.argmax(counts))]


def compare(
    rgb: np.ndarray, fg: np.ndarray, distribution: np.ndarray, examples_rgb: Sequence[np.ndarray], examples_fg: Sequence[np.ndarray]
) -> tuple[np.ndarray, list[dict], list[tuple[np.ndarray, int]]]:
    """The failed image (``(H, W, 3)`` PFV, foreground mask, distribution) against one class's examples.

    Returns:
        The class's mean ``(3,)`` distribution, one finding per component that differs by ``MARGIN`` or
        more, and the ``(mask, component)`` pairs that mark where.
    """
    class_mean = np.mean([colour_distribution(x, m) for x, m in zip(examples_rgb, examples_fg)], axis=0)
    findings, marks = [], []
    for k in range(3):
        difference = distribution[k] - class_mean[k]
        if abs(difference) < MARGIN:
            continue
        values = np.concatenate([x[..., k][m] for x, m in zip(examples_rgb, examples_fg)])
        mean, spread = float(values.mean()), float(values.std())
        lacking = difference < 0
        where = fg & ((rgb[..., k] < mean - spread) if lacking else (rgb[..., k] > mean + spread))
        findings.append(
            {
                "component": k + 1,
                "colour": COMPONENT_NAMES[k],
                "verdict": "lacks" if lacking else "excess",
                "image_share": round(float(distribution[k]), 4),
                "class_share": round(float(class_mean[k]), 4),
                "region": region_of(where) if where.any() else None,
                "marked_share": round(float(where.mean()), 4),
            }
        )
        marks.append((where, k))
    return class_mean, findings, marks


def sentence(label: str, findings: list[dict]) -> str:
    if not findings:
        return f"Compared with the {label}: no component differs by {MARGIN:.0%} or more."
    parts = []
    for f in findings:
        verb = "lacks" if f["verdict"] == "lacks" else "has in excess"
        where = f", mostly in the {f['region']} ({f['marked_share']:.0%} of the image marked)" if f["region"] else ""
        parts.append(
            f"{verb} component {f['component']} ({f['colour']}: {f['image_share']:.0%} of its foreground against "
            f"{f['class_share']:.0%}){where}"
        )
    return f"Compared with the {label}, the image " + "; ".join(parts) + "."


def _pick(inputs: Sequence[str | Path], exclude: Path, seed: int) -> list[Path]:
    paths = [p for p in expand_inputs(inputs) if p.resolve() != exclude.resolve()]
    if not paths:
        raise PFVError("no example images for a class")
    if len(paths) <= EXAMPLES:
        return paths
    chosen = np.random.default_rng(seed).choice(len(paths), EXAMPLES, replace=False)
    return [paths[i] for i in sorted(chosen)]


def debug(pfv, image: str | Path, true_class: Sequence[str | Path], predicted_class: Sequence[str | Path], seed: int = 0) -> Debug:
    """Debug ``image`` against examples of its true and its predicted class with ``pfv`` (a
    :class:`~pfv_onnx.PFV`; the command weights by :data:`DEFAULT_WEIGHTING`); see the module docstring."""
    image = Path(image)
    if not image.is_file():
        raise PFVError(f"{image}: no such image file (--image takes one file)")
    groups = {"true": _pick(true_class, image, seed), "predicted": _pick(predicted_class, image, seed)}
    paths = [image, *groups["true"], *groups["predicted"]]
    result = pfv(paths)
    names = ["failed", *[f"{key} {i + 1}" for key, members in groups.items() for i in range(len(members))]]
    fgs = [foreground(a) for a in result.activation]
    distributions = [colour_distribution(x, m) for x, m in zip(result.rgb, fgs)]
    indices = {"true": range(1, 1 + len(groups["true"])), "predicted": range(1 + len(groups["true"]), len(paths))}
    classes, sentences, where = {}, [], {}
    for key, idx in indices.items():
        class_mean, findings, where[key] = compare(result.rgb[0], fgs[0], distributions[0], [result.rgb[i] for i in idx], [fgs[i] for i in idx])
        classes[key] = {"examples": [str(paths[i]) for i in idx], "mean_distribution": [round(float(v), 4) for v in class_mean],
                        "findings": findings, "picture": f"where_{key}.png"}
        sentences.append(sentence(f"{key} class", findings))
    top = result.top_k(5)[0] if result.logits is not None else []
    summary = {
        "image": str(image),
        "prediction": [{"class": c, "label": label, "probability": round(p, 6)} for c, label, p in top],
        "foreground_share": FOREGROUND_SHARE,
        "margin": MARGIN,
        "options": pfv.options.view("method"),
        "images": [{"name": n, "source": str(p), "distribution": [round(float(v), 4) for v in d]} for n, p, d in zip(names, paths, distributions)],
        "classes": classes,
        "verdict": sentences,
        "explained_variance_ratio": [round(float(r), 6) for r in result.explained_variance_ratio],
    }
    return Debug(summary, result, names, distributions, where)
