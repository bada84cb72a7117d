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
level, single steps go up and down by chance; the trend, not each step, is what must fall.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from pathlib import Path

import numpy as np

from ..core.metrics import rank_correlation, ssim
from ..errors import ModelError
from ..files import atomic_path
from ..graph import load_model, reinitialise, weighted_nodes, weights_folder, with_weights
from ..pipeline import PFV, PFVResult
from ..render import Figure, Section, labelled_grid, line_chart, page, to_uint8, write_png

UNRELATED = 0.3
TREND = -0.5
STEPS = 8


def similarities(trained: PFVResult, other: PFVResult) -> tuple[float, float]:
    """Mean Spearman correlation and mean SSIM of two results' pictures, image by image."""
    rho = [rank_correlation(a, b) for a, b in zip(trained.rgb, other.rgb)]
    structure = [ssim(a, b) for a, b in zip(trained.rgb, other.rgb)]
    return float(np.mean(rho)), float(np.mean(structure))


def cascade_counts(layers: int, steps: int) -> list[int]:
    """How many of the top layers each cascade step randomises: from 1 to all (always), evenly spread."""
    return sorted({int(round(v)) for v in np.linspace(1, layers, max(2, min(steps, layers)))})


def sanity(pfv: PFV, images: Sequence[str | Path], out: Path, steps: int = STEPS, seed: int = 0) -> dict:
    """Run the test on ``images`` with ``pfv``'s model and options; write the report to ``out``."""
    options = pfv.config()
    # Weights in external files are read in: they are about to be replaced.
    path = options.pop("model")
    model = load_model(path)
    source = with_weights(model, weights_folder(path, model))
    layers = [node.name for node in weighted_nodes(source)]
    if not layers:
        raise ModelError(
            "no convolution or linear layer with its weights stored as a constant (a quantised model keeps "
            "them behind DequantizeLinear): nothing to randomise"
        )
    trained = pfv.fit_transform(images)
    counts = cascade_counts(len(layers), steps)
    rows, pictures = [], [[to_uint8(x) for x in trained.rgb]]
    for count in counts:
        randomised = PFV(reinitialise(source, layers[len(layers) - count :], seed=seed), **options).fit_transform(images)
        rho, structure = similarities(trained, randomised)
        rows.append({"randomised": count, "from_layer": layers[len(layers) - count], "spearman": round(rho, 4), "ssim": round(structure, 4)})
        pictures.append([to_uint8(x) for x in randomised.rgb])
    at_once = PFV(reinitialise(source, seed=seed + 1), **options).fit_transform(images)
    rho, structure = similarities(trained, at_once)
    independent = {"randomised": len(layers), "spearman": round(rho, 4), "ssim": round(structure, 4), "seed": seed + 1}

    curve = [r["spearman"] for r in rows]
    trend = rank_correlation(np.array(counts, dtype=float), np.array(curve)) if len(curve) > 1 else 0.0
    passed = bool(independent["spearman"] < UNRELATED and curve[-1] < UNRELATED and trend <= TREND)
    out.mkdir(parents=True, exist_ok=True)
    write_png(out / "curve.png", line_chart(counts, {"Spearman": curve, "SSIM": [r["ssim"] for r in rows]}, "top layers randomised"))
    titles = ["trained"] + [f"top {c} random" for c in counts]
    write_png(out / "steps.png", labelled_grid(pictures, titles, trained.names))
    summary = {
        "layers": len(layers),
        "images": [str(p) for p in images] if not isinstance(images, (str, Path)) else [str(images)],
        "cascade": rows,
        "all_at_once": independent,
        "cascade_trend": round(trend, 4),
        "passed": passed,
        "criteria": {"fully_random_spearman_below": UNRELATED, "cascade_trend_at_most": TREND},
    }
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    table = [["top layers randomised", "from layer", "Spearman", "SSIM"]] + [
        [str(r["randomised"]), f"<code>{escape(r['from_layer'])}</code>", f"{r['spearman']:.3f}", f"{r['ssim']:.3f}"] for r in rows
    ] + [[f"all {len(layers)}, at once", "(another seed)", f"{independent['spearman']:.3f}", f"{independent['ssim']:.3f}"]]
    verdict = "PASSED" if passed else "FAILED"
    section = Section(
        f"Randomisation test: {verdict}",
        [f"PFV {'changes' if passed else 'does not change enough'} as the network's weights are randomised "
         f"(criteria: fully randomised below {UNRELATED}, all at once and at the end of the cascade; the cascade's rank "
         f"correlation with the number of randomised layers {TREND} or lower: here {trend:.2f})."],
        table=table,
        figures=[Figure("curve.png", "similarity with the trained model's PFV"), Figure("steps.png", "PFV at every step", wide=True)],
    )
    with atomic_path(out / "index.html") as tmp:
        tmp.write_text(page("pfv-onnx sanity", [], [section]), encoding="utf-8")
    return summary
