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
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from html import escape
from pathlib import Path

import numpy as np

from ..analyses.colouring import BatchResult
from ..util.console import say
from ..core.metrics import rank_correlation, ssim
from ..errors import ModelError
from ..util.files import check_apart, output_folder, write_report
from ..graph import load_with_weights, reinitialise, weighted_nodes
from ..options import Options, given_flags
from ..pfv import PFV
from ..render import Figure, Section, labelled_grid, line_chart, page, to_uint8, write_png

UNRELATED = 0.3
TREND = -0.5
STEPS = 8


def similarities(trained: BatchResult, other: BatchResult) -> tuple[float, float]:
    """Mean Spearman correlation and mean SSIM of two results' pictures, image by image."""
    rho = [rank_correlation(a, b) for a, b in zip(trained.rgb, other.rgb)]
    structure = [ssim(a, b) for a, b in zip(trained.rgb, other.rgb)]
    return float(np.mean(rho)), float(np.mean(structure))


def cascade_counts(layers: int, steps: int) -> list[int]:
    """How many of the top layers each cascade step randomises: from 1 to all (always), evenly spread."""
    return sorted({int(round(v)) for v in np.linspace(1, layers, max(2, min(steps, layers)))})


def sanity(pfv: PFV, images: Sequence[str | Path], out: Path, steps: int = STEPS, seed: int = 0) -> dict:
    """Run the test on ``images`` with ``pfv``'s model and method options; write the report to ``out``.

    Every picture, the trained model's and the randomised models', is coloured relative to its batch with
    the same options (those of ``pfv``, which a fitted basis fixes)."""
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
    rows, pictures = [], [[to_uint8(x) for x in trained.rgb]]
    for count in counts:
        randomised = PFV(reinitialise(source, range(len(layers) - count, len(layers)), seed=seed), **options)(images)
        rho, structure = similarities(trained, randomised)
        rows.append({"randomised": count, "from_layer": layers[len(layers) - count], "spearman": round(rho, 4), "ssim": round(structure, 4)})
        pictures.append([to_uint8(x) for x in randomised.rgb])
    rho, structure = similarities(trained, PFV(reinitialise(source, seed=seed + 1), **options)(images))
    independent = {"randomised": len(layers), "spearman": round(rho, 4), "ssim": round(structure, 4), "seed": seed + 1}

    curve = [r["spearman"] for r in rows]
    # Below UNRELATED the pictures are as unlike as those of two photos: the steps there are equal, not rising.
    fallen = np.maximum(curve, UNRELATED)
    if len(set(fallen)) > 1:
        trend = rank_correlation(np.array(counts, dtype=float), fallen)
    else:  # one level throughout: fallen from the start, or never
        trend = -1.0 if fallen[0] == UNRELATED else 0.0
    passed = bool(independent["spearman"] < UNRELATED and curve[-1] < UNRELATED and trend <= TREND)
    out = output_folder(out, overwrite=True)
    write_png(out / "curve.png", line_chart(counts, {"Spearman": curve, "SSIM": [r["ssim"] for r in rows]}, "top layers randomised"))
    write_png(out / "steps.png", labelled_grid(pictures, ["trained"] + [f"top {c} random" for c in counts], trained.names))
    summary = {
        "layers": len(layers),
        "images": [str(p) for p in images] if not isinstance(images, (str, Path)) else [str(images)],
        "options": pfv.options.view("method"),
        "cascade": rows,
        "all_at_once": independent,
        "cascade_trend": round(trend, 4),
        "passed": passed,
        "criteria": {"fully_random_spearman_below": UNRELATED, "cascade_trend_at_most": TREND},
    }
    write_report(out, summary, page("pfv-onnx sanity", [], [_section(rows, independent, trend, passed, len(layers))]))
    return summary


def _section(rows: list[dict], independent: dict, trend: float, passed: bool, layers: int) -> Section:
    table = [["top layers randomised", "from layer", "Spearman", "SSIM"]] + [
        [str(r["randomised"]), f"<code>{escape(r['from_layer'])}</code>", f"{r['spearman']:.3f}", f"{r['ssim']:.3f}"] for r in rows
    ] + [[f"all {layers}, at once", "(another seed)", f"{independent['spearman']:.3f}", f"{independent['ssim']:.3f}"]]
    return Section(
        f"Randomisation test: {'PASSED' if passed else 'FAILED'}",
        [f"PFV {'changes' if passed else 'does not change enough'} as the network's weights are randomised "
         f"(criteria: fully randomised below {UNRELATED}, all at once and at the end of the cascade; the cascade's rank "
         f"correlation with the number of randomised layers {TREND} or lower: here {trend:.2f})."],
        table=table,
        figures=[Figure("curve.png", "similarity with the trained model's PFV"), Figure("steps.png", "PFV at every step", wide=True)],
    )


def run(args: argparse.Namespace, options: Options) -> int:
    """Exit 0 when the test passes, 1 when it fails."""
    out = Path(args.out)  # checked and held by the command line (OUTPUTS)
    check_apart(out, [args.basis] if args.basis else [], datasets=args.inputs)
    summary = sanity(PFV(args.model, basis=args.basis, **given_flags(args)), args.inputs, out, steps=args.steps, seed=args.seed)
    if not args.quiet:
        for row in summary["cascade"]:
            say(f"  top {row['randomised']:>3} {'layer ' if row['randomised'] == 1 else 'layers'} random: Spearman {row['spearman']:+.3f}, SSIM {row['ssim']:.3f}")
        once = summary["all_at_once"]
        say(f"  all at once:           Spearman {once['spearman']:+.3f}, SSIM {once['ssim']:.3f}")
        say(f"randomisation test {'passed' if summary['passed'] else 'FAILED'}: {out}/index.html")
    return 0 if summary["passed"] else 1
