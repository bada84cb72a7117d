"""``pfv-onnx demo``: the paper's figures 2-4 reproduced on the bundled model and photos, with an index.html.

Figure 2: one batch of animals: unweighted components, and for each weighting its map and PFV.
Figure 3: what the colours depend on: the joint batch, each image as its own batch, and the same network
          with re-initialised weights (the randomisation test of Adebayo et al.).
Figure 4: PFV beside gradient-free baselines from the same single forward pass: the activation map,
          EigenCAM, and class activation maps of the top-3 classes (networks whose head is global average
          pooling and one linear layer).
Figure 5 (not in the paper): the same photo in two batches, coloured relative to each batch and with a
          basis fitted on all the sample photos.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from html import escape
from pathlib import Path

import numpy as np

from ..images import bundled
from ..analyses.colouring import BatchResult
from ..util.console import say
from ..core import class_activation_maps, eigen_cam
from ..util.files import output_folder, write_atomic
from ..graph import load_with_weights, reinitialise
from ..options import WEIGHTINGS, Options
from ..pfv import PFV
from ..render import Figure, Section, colour_map, labelled_grid, overlay, page, to_uint8, write_png
from ..render.legend import colour_key
from ..render.report import batch_pictures

ANIMALS = ("chelsea", "dog", "person", "horses", "giraffe")


def _short(label: str | None, index: int) -> str:
    return (label or f"class {index}").split(",")[0]


def _heat(maps: np.ndarray, images: np.ndarray) -> list[np.ndarray]:
    """``(B, H, W)`` maps in ``[0, 1]`` as viridis over greyscale copies of the ``(B, H, W, 3)`` inputs."""
    return [overlay(colour_map(m, 0.0, 1.0), image) for m, image in zip(maps, images)]


def figure_batch(results: dict[str, BatchResult]) -> np.ndarray:
    """Inputs, unweighted components, then each weighting's map and PFV (``results`` by weighting)."""
    pictures = {weighting: batch_pictures(result) for weighting, result in results.items()}
    first = next(iter(results.values()))
    rows, titles = [list(first.images), list(next(iter(pictures.values()))["components"])], ["input", "PFV, unweighted"]
    for weighting, kinds in pictures.items():
        rows += [list(kinds["activation"]), list(kinds["pfv"])]
        titles += [f"{weighting}: map", f"{weighting}: PFV"]
    return labelled_grid(rows, titles, first.names)


def figure_composition(joint: BatchResult, singles: Sequence[BatchResult], randomised: BatchResult) -> np.ndarray:
    rows = [
        list(joint.images),
        [to_uint8(x) for x in joint.rgb],
        [to_uint8(r.rgb[0]) for r in singles],
        [to_uint8(x) for x in randomised.rgb],
    ]
    titles = ["input", "PFV, joint batch", "PFV, image alone", "PFV, random weights"]
    return labelled_grid(rows, titles, joint.names)


def figure_baselines(result: BatchResult, pfv: PFV) -> tuple[np.ndarray, list[list[tuple[int, str, float]]] | None]:
    assert result.features is not None and result.images is not None
    images = result.images
    size = images.shape[1:3]
    peak = float(np.percentile(result.activation, 99))
    rows = [
        list(images),
        [overlay(to_uint8(x), image) for x, image in zip(result.rgb, images)],
        _heat(np.clip(result.activation / peak, 0, 1) if peak > 0 else result.activation, images),
        _heat(eigen_cam(result.features.final, size), images),
    ]
    titles = ["input", "PFV", "activation map", "EigenCAM"]
    captions = [[""] * len(images) for _ in rows]
    top = None
    head = pfv.featurizer.head
    if head is not None and result.logits is not None:
        top = result.top_k(3)
        classes = np.array([[c for c, _, _ in t] for t in top])
        cams = class_activation_maps(result.features.final, head.weight, classes, size)
        for k in range(3):
            rows.append(_heat(cams[:, k], images))
            titles.append(f"CAM, class {k + 1}")
            captions.append([f"{_short(t[k][1], t[k][0])} {t[k][2]:.0%}" for t in top])
    return labelled_grid(rows, titles, result.names, captions), top


def figure_fitted(pfv: PFV, batch_a: Sequence[Path], batch_b: Sequence[Path]) -> np.ndarray:
    """The same photo in two batches: relative colours change with the batch, fitted ones do not."""
    relative = [pfv(batch) for batch in (batch_a, batch_b)]
    fitted = [pfv.transform(batch) for batch in (batch_a, batch_b)]
    rows = [
        [image for r in relative for image in r.images],
        [to_uint8(x) for r in relative for x in r.rgb],
        [to_uint8(x) for r in fitted for x in r.rgb],
    ]
    titles = [f"{tag}: {name}" for tag, r in zip("AB", relative) for name in r.names]
    return labelled_grid(rows, ["input", "PFV, relative", "PFV, fitted basis"], titles)


def demo(out: Path, model: str | Path = bundled.DEFAULT_MODEL, options: Options | None = None) -> list[Path]:
    """Write the figures and ``index.html`` to ``out``; return the written paths."""
    path = bundled.resolve_model(model)
    pfv = PFV(path, options)
    photos = [bundled.sample_image(stem) for stem in ANIMALS]
    joint = pfv(photos)
    by_weighting = {w: joint if w == pfv.options.weighting else PFV(path, pfv.options.weighted(w))(photos) for w in WEIGHTINGS}
    singles = [pfv([photo]) for photo in photos]
    randomised = PFV(reinitialise(load_with_weights(path), seed=0), pfv.options)(photos)
    fig4, top = figure_baselines(joint, pfv)
    pfv.fit(bundled.sample_images())
    batch_a = [bundled.sample_image(s) for s in ("dog", "chelsea", "horses")]
    batch_b = [bundled.sample_image(s) for s in ("giraffe", "dog", "coffee")]
    figures = {
        "fig2_batch.png": figure_batch(by_weighting),
        "fig3_batch_and_weights.png": figure_composition(joint, singles, randomised),
        "fig4_baselines.png": fig4,
        "fig5_fitted_basis.png": figure_fitted(pfv, batch_a, batch_b),
    }
    out = output_folder(out, overwrite=True)
    written = [write_png(out / name, picture) for name, picture in figures.items()]
    intro = [
        f"Principal Feature Visualisation of the bundled <code>{escape(str(model))}</code> on the sample photos "
        "(see <code>pfv_onnx/samples/ATTRIBUTION.md</code>), reproducing figures 2-4 of Bakken et al., ECCV 2020."
    ]
    page_path = write_atomic(out / "index.html", page("pfv-onnx demo", intro, _sections(joint.explained_variance_ratio, joint.visualisation.neutral, top is not None, pfv)))
    return [*written, page_path]


def _sections(ratios, neutral: float, has_head: bool, fitted: PFV) -> list[Section]:
    return [
        Section(
            "Figure 2: one batch of animals",
            [
                "Five photos analysed together. The unweighted components are the first three principal components "
                "of the last tapped layer, upsampled; PFV weights them by a map of where the network responds. "
                "<b>focus</b> (the default): what the network responds to beyond a featureless image, in its last "
                "layer, sharpened by the last earlier tap; <b>paper</b>: the paper's A<sup>b</sup>, the channel sums of "
                "every earlier tap added, which zero padding makes peak on the border; <b>final</b>: the channel sum of "
                "the last layer alone.",
                colour_key(ratios, neutral),
            ],
            figures=[Figure("fig2_batch.png", "rows: input, unweighted components, then each weighting's map and PFV", wide=True)],
        ),
        Section(
            "Figure 3: colours depend on the batch and on the weights",
            [
                "Row 2: the joint batch. Row 3: each photo as a batch of its own; the colours now contrast the "
                "parts of one image. Row 4: the same network with every convolution and linear layer "
                "re-initialised (He-normal, biases zero): its maps no longer follow the objects, so PFV shows what "
                "the trained weights learnt rather than the image itself.",
            ],
            figures=[Figure("fig3_batch_and_weights.png", "rows: input, joint batch, single-image batches, random weights", wide=True)],
        ),
        Section(
            "Figure 4: PFV and gradient-free baselines from the same forward pass",
            [
                "The activation map and EigenCAM (each image's own first principal component) show where the "
                "network responds, in one colour; class activation maps show where the evidence for one class is. "
                "PFV shows several contrasting features at once, in colour, across the batch.",
                "Class activation maps need a head of global average pooling and one linear layer; "
                + ("this model has one." if has_head else "this model has none, so they are left out."),
            ],
            figures=[Figure("fig4_baselines.png", "rows: input, PFV, activation map, EigenCAM, CAM of the top-3 classes", wide=True)],
        ),
        Section(
            "Beyond the paper: colours that mean the same in every batch",
            [
                "The paper's colours are relative to the batch: the dog by the bicycle changes colour between batch A "
                "and batch B (row 2). A basis fitted once on all eight sample photos (<code>pfv-onnx fit</code>) fixes "
                "the components, the layer weights and the normalisation, so the dog keeps its colours in both "
                "batches (row 3) and batches can be compared.",
                "Fitted basis: " + colour_key(fitted.basis.pca.explained_variance_ratio, None),
            ],
            figures=[Figure("fig5_fitted_basis.png", "rows: input, PFV relative to each batch, PFV with the fitted basis", wide=True)],
        ),
    ]


def run(args: argparse.Namespace, options: Options) -> int:
    out = Path(args.out)  # checked and held by the command line (OUTPUTS)
    written = demo(out, args.model, options)
    if not args.quiet:
        say(f"wrote {len(written)} files to {out}/: open {out}/index.html")
    return 0
