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
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from html import escape
from pathlib import Path

import numpy as np

from ..util.console import say
from ..core.metrics import FOREGROUND_SHARE, colour_distribution, foreground
from ..errors import PFVError
from ..util.files import check_apart, output_folder, write_report
from ..images.labels import class_label
from ..options import Options
from ..pfv import PFV
from ..images.preprocess import expand_inputs
from ..render import BAR_COLOURS, Figure, Section, bars, labelled_grid, mark, overlay, page, to_uint8, write_png
from ..render.report import safe_name

EXAMPLES = 3
DEFAULT_WEIGHTING = "paper"
MARGIN = 0.05
COMPONENT_NAMES = ("red", "green", "blue")
REGIONS = ("top left", "top", "top right", "left", "centre", "right", "bottom left", "bottom", "bottom right")


def region_of(mask: np.ndarray) -> str:
    """The ninth of the picture (3 x 3 grid) that holds most of the ``(H, W)`` mask's pixels."""
    height, width = mask.shape
    counts = [mask[i * height // 3 : (i + 1) * height // 3, j * width // 3 : (j + 1) * width // 3].sum() for i in range(3) for j in range(3)]
    return REGIONS[int(np.argmax(counts))]


def compare(
    rgb: np.ndarray, fg: np.ndarray, distribution: np.ndarray, examples_rgb: Sequence[np.ndarray], examples_fg: Sequence[np.ndarray]
) -> tuple[np.ndarray, list[dict], list[tuple[np.ndarray, tuple[int, int, int]]]]:
    """The failed image (``(H, W, 3)`` PFV, foreground mask, distribution) against one class's examples.

    Returns:
        The class's mean ``(3,)`` distribution, one finding per component that differs by ``MARGIN`` or
        more, and the ``(mask, colour)`` pairs that mark where.
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
        marks.append((where, BAR_COLOURS[k]))
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


def debug(pfv: PFV, image: str | Path, true_class: Sequence[str | Path], predicted_class: Sequence[str | Path], out: Path, seed: int = 0) -> dict:
    """Write the debug report of ``image`` to ``out`` and return its summary (see the module docstring)."""
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

    out = output_folder(out, overwrite=True)
    classes, sentences, figures = {}, [], []
    for key, idx in indices.items():
        label = f"{key} class"
        class_mean, findings, marks = compare(result.rgb[0], fgs[0], distributions[0], [result.rgb[i] for i in idx], [fgs[i] for i in idx])
        picture = f"where_{key}.png"
        write_png(out / picture, mark(result.images[0], marks))
        classes[key] = {"examples": [str(paths[i]) for i in idx], "mean_distribution": [round(float(v), 4) for v in class_mean], "findings": findings, "picture": picture}
        sentences.append(sentence(label, findings))
        figures.append(Figure(picture, f"where the differences from the {label} are (painted in each component's colour)"))
    write_png(out / "panel.png", _panel(result, names, distributions))

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
    prediction = f"Predicted: {escape(class_label(top[0][0], top[0][1]))} ({top[0][2]:.0%})." if top else ""
    sections = [
        Section("Verdict", [prediction, *map(escape, sentences)], figures=figures),
        Section(
            "The batch",
            [f"The failed image, {len(groups['true'])} examples of the true class and {len(groups['predicted'])} of the predicted "
             f"class, analysed together. Bars: the share of each component over each image's foreground (the "
             f"{FOREGROUND_SHARE:.0%} of its pixels with the highest activation)."],
            figures=[Figure("panel.png", "rows: input, PFV, PFV over the input; bars: foreground distribution", wide=True)],
        ),
    ]
    write_report(out, summary, page(f"pfv-onnx debug: {safe_name(image.name)}", [], sections))
    return summary


def _panel(result, names: list[str], distributions: list[np.ndarray]) -> np.ndarray:
    """Inputs, PFV and PFV over the inputs, with bars of each image's foreground distribution below."""
    width = result.images.shape[2]
    rows = [list(result.images), [to_uint8(x) for x in result.rgb], [overlay(to_uint8(x), i) for x, i in zip(result.rgb, result.images)]]
    grid = labelled_grid(rows, ["input", "PFV", "PFV over the input"], names)
    chart = labelled_grid([[bars(d, width) for d in distributions]], ["foreground R, G, B"], None)
    return np.vstack([grid, np.full((4, grid.shape[1], 3), 255, np.uint8), chart])


def run(args: argparse.Namespace, options: Options) -> int:
    out = Path(args.out)  # checked and held by the command line (OUTPUTS)
    check_apart(out, datasets=[args.image, *args.true_class, *args.predicted_class])
    if getattr(args, "weighting", None) is None:
        options = options.replace(weighting=DEFAULT_WEIGHTING)
    summary = debug(PFV(args.model, options), args.image, args.true_class, args.predicted_class, out, seed=args.seed)
    if not args.quiet:
        top = summary["prediction"][0] if summary["prediction"] else None
        if top:
            say(f"predicted: {top['label'] or top['class']} ({top['probability']:.0%})")
        for line in summary["verdict"]:
            say(line)
        say(f"wrote {out}/index.html")
    return 0
