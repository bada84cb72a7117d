"""``pfv-onnx sanity``: the model-parameter randomisation test (Adebayo et al., NeurIPS 2018; paper fig. 3).

A visualisation that shows what a network learnt must change when the network's weights are destroyed.
The weights of the convolutional and linear layers are re-initialised (He-normal, biases zero, seeded)
in a cascade from the top layer down, and also all at once (another seed). At every step PFV is computed on
the same images and compared with the trained model's PFV: Spearman's rank correlation and SSIM of each
image's picture, averaged over the images.

PFV passes when, with every layer randomised (all at once, and at the end of the cascade), its pictures
correlate below :data:`UNRELATED` with the trained ones (the level at which PFV pictures of *different*
photos already correlate: about 0.3 for the bundled model), and the cascade falls: the similarity's rank
correlation with the number of randomised layers is :data:`TREND` or lower. (Once near the unrelated
level, single steps go up and down by chance; the trend, not each step, is what must fall, and every step
below the unrelated level counts as at it: a cascade that falls there at once and stays has fallen.)

:func:`sanity` returns a :class:`Sanity` and writes nothing; :mod:`pfv_onnx.render.sanity` writes its page, and
:meth:`pfv_onnx.PFV.sanity` returns it as a :class:`~pfv_onnx.results.SanityResult` that saves and shows itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.metrics import rank_correlation, ssim
from ..errors import ModelError
from ..graph import load_with_weights, reinitialise, weighted_nodes
from .colouring import BatchResult

UNRELATED = 0.3
TREND = -0.5
STEPS = 8


@dataclass(repr=False)
class Sanity:
    """A randomisation test: ``summary`` (what ``summary.json`` holds), the images' ``names``, ``pictures``:
    the trained model's PFV ``rgb`` ``(n, H, W, 3)`` float32 first, then one per cascade step, and the
    cascade's ``trend`` (:func:`cascade_trend`, unrounded)."""

    summary: dict[str, Any]
    names: list[str]
    pictures: list[np.ndarray]
    trend: float

    @property
    def passed(self) -> bool:
        return self.summary["passed"]

    def __repr__(self) -> str:
        s = self.summary
        once = s["all_at_once"]
        lines = [f"Randomisation test {'passed' if s['passed'] else 'FAILED'}: {s['layers']} layers, {len(s['images'])} images, "
                 f"cascade trend {s['cascade_trend']:.2f}",
                 *(f"  top {r['randomised']} random: Spearman {r['spearman']:+.3f}, SSIM {r['ssim']:.3f}" for r in s["cascade"]),
                 f"  all at once: Spearman {once['spearman']:+.3f}, SSIM {once['ssim']:.3f}"]
        return "\n".join(lines)


def similarities(trained: BatchResult, other: BatchResult) -> tuple[float, float]:
    """Mean Spearman correlation and mean SSIM of two results' pictures, image by image."""
    rho = [rank_correlation(a, b) for a, b in zip(trained.rgb, other.rgb)]
    structure = [ssim(a, b) for a, b in zip(trained.rgb, other.rgb)]
    return float(np.mean(rho)), float(np.mean(structure))


def cascade_counts(layers: int, steps: int) -> list[int]:
    """How many of the top layers each cascade step randomises: from 1 to all (always), evenly spread."""
    return sorted({int(round(v)) for v in np.linspace(1, layers, max(2, min(steps, layers)))})


def cascade_trend(counts: list[int], curve: list[float]) -> float:
    """The rank correlation of the cascade's similarity ``curve`` with the ``counts`` of randomised layers,
    every step below :data:`UNRELATED` counted as at it."""
    # Below UNRELATED the pictures are as unlike as those of two photos: the steps there are equal, not rising.
    fallen = np.maximum(curve, UNRELATED)
    if len(set(fallen)) > 1:
        return rank_correlation(np.array(counts, dtype=float), fallen)
    return -1.0 if fallen[0] == UNRELATED else 0.0  # one level throughout: fallen from the start, or never


def sanity(pfv, images: Sequence[str | Path], steps: int = STEPS, seed: int = 0) -> Sanity:
    """Run the test on ``images`` with ``pfv``'s model and method options (``pfv`` a :class:`~pfv_onnx.PFV`).

    Every picture, the trained model's and the randomised models', is coloured relative to its batch with
    the same options (those of ``pfv``, which a fitted basis fixes), by PFVs of ``pfv``'s own class."""
    options = pfv._config()
    source = load_with_weights(options.pop("model"))  # its weights are about to be replaced
    layers = [node.name or f"{node.op_type} #{i + 1}" for i, node in enumerate(weighted_nodes(source))]
    if not layers:
        raise ModelError(
            "no convolution or linear layer with its weights stored as a constant (a quantised model keeps "
            "them behind DequantizeLinear): nothing to randomise"
        )
    trained = pfv(images)
    counts = cascade_counts(len(layers), steps)
    rows, pictures = [], [trained.rgb]
    for count in counts:
        randomised = type(pfv)(reinitialise(source, range(len(layers) - count, len(layers)), seed=seed), **options)(images)
        rho, structure = similarities(trained, randomised)
        rows.append({"randomised": count, "from_layer": layers[len(layers) - count], "spearman": round(rho, 4), "ssim": round(structure, 4)})
        pictures.append(randomised.rgb)
    rho, structure = similarities(trained, type(pfv)(reinitialise(source, seed=seed + 1), **options)(images))
    independent = {"randomised": len(layers), "spearman": round(rho, 4), "ssim": round(structure, 4), "seed": seed + 1}
    curve = [r["spearman"] for r in rows]
    trend = cascade_trend(counts, curve)
    summary = {
        "layers": len(layers),
        "images": [str(p) for p in images] if not isinstance(images, (str, Path)) else [str(images)],
        "options": pfv.options.view("method"),
        "cascade": rows,
        "all_at_once": independent,
        "cascade_trend": round(trend, 4),
        "passed": bool(independent["spearman"] < UNRELATED and curve[-1] < UNRELATED and trend <= TREND),
        "criteria": {"fully_random_spearman_below": UNRELATED, "cascade_trend_at_most": TREND},
    }
    return Sanity(summary, list(trained.names), pictures, trend)
