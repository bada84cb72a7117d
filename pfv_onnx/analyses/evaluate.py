"""Do the maps PFV makes point at the object, and are they faithful to the model? Numbers from one forward
pass over images whose object is known to the pixel (:mod:`pfv_onnx.images.composites`).

The maps compared (:data:`CONTROLS` know nothing of the image):

``PFV (w)``               the PFV picture's saliency, its distance from the neutral grey, for each weighting
``weighting map (w)``     the map that weights the components, for ``focus`` and ``paper`` (the paper's ``A^b``)
``channel sum of F_N``    the ``final`` weighting's map (what OpenVINO-XAI calls the activation map)
``component k``           each shown component's distance from the neutral grey, with the chosen weighting
``EigenCAM``, ``CAM``     from the same features (CAM of the top class, for a head of pooling and one layer)
``Gaussian``, ``random``  the controls: a centred Gaussian and seeded noise

Localisation, per map and image (:mod:`pfv_onnx.core.relevance`): the pointing game, the maximum on the
border, ROC-AUC and the mass inside the object over its area. Faithfulness (Petsiuk et al., BMVC 2018): the
pixels are removed (deletion) from the image, or restored (insertion) into a blurred or mean-coloured copy,
in the map's order in ``steps`` equal parts, and the model's probability of its top class is read at every
step from batched forward passes of the original model; the areas under the two curves, and their
difference (insertion minus deletion, higher is more faithful), are the scores. Per component this is an
importance that needs no gradient.

A run is trustworthy when the random control scores as chance (ROC-AUC within :data:`RANDOM_TOLERANCE` of
0.5); when the masks belong to their images (:func:`~pfv_onnx.core.pairing.mask_check`: the map that finds the objects best against
their own masks, compared with what it scores against other images' masks, must lead by :data:`MIN_MASK_LEAD`
of ROC-AUC, and by more than a wrong pairing of images and masks leads in all but :data:`MASK_P_VALUE` of
the cases; else the masks do not belong to their images, or the network sees nothing); and, when
faithfulness is measured, when filling the whole image lowers the top class's probability by
:data:`MIN_DROP` on average (else the curves cannot tell the maps apart).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import relevance
from ..core.pairing import MASK_P_VALUE, mask_check, min_mask_images
from ..errors import PFVError
from ..images import bundled
from ..images.composites import Scene, composites
from ..options import Options
from ..runtime.featurizer import Featurizer, ModelLike
from .evaluation_batches import CONTROLS, RANDOM, Measure, Run, component_name, run_on_dask
from .faithfulness import FILLS, Scorer, require_scores, rounded

STEPS = 20
# Each step of the curves costs two forward passes of every map of every image (about 600 an image at the
# default 20 steps, 3 s with MobileNetV2 on two cores). 200 steps, half a percent of the pixels each, cost
# ten times that; more would only multiply the hours.
MAX_STEPS = 200
BATCH = 16
COMPOSITES = 48
RANDOM_TOLERANCE = 0.03
MIN_DROP = 0.05
MIN_MASK_LEAD = 0.02
LOCALISATION = ("pointing", "border", "auc", "mass")
# The images to score: scenes, or a function of the model's input size ``(H, W)`` that makes them.
Scenes = Sequence[Scene] | Callable[[tuple[int, int]], Sequence[Scene]]


@dataclass
class Evaluation:
    """What :func:`evaluate` measured.

    Attributes:
        summary: the numbers, as JSON data (the layout of ``summary.json``).
        examples: for the first few images, ``"image"`` ``(n, H, W, 3)`` uint8, ``"mask"`` ``(n, H, W)``
            bool, ``"picture"`` ``(n, H, W, 3)`` float32 (the PFV picture with the chosen weighting) and one
            ``(n, H, W)`` float32 array per map.
    """

    summary: dict[str, Any]
    examples: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def trustworthy(self) -> bool:
        return bool(self.summary["controls"]["trustworthy"])


def default_scenes(size: tuple[int, int], count: int = COMPOSITES, seed: int = 0) -> list[Scene]:
    """``count`` composites of the shipped cut-outs on the shipped photos, at ``size`` ``(H, W)``."""
    objects, backgrounds = bundled.relevance_set()
    return composites(sorted(objects.glob("*.webp")), sorted(backgrounds.glob("*.webp")), size, count, seed)


def evaluate(
    model: ModelLike = bundled.DEFAULT_MODEL,
    scenes: Scenes | None = None,
    options: Options | None = None,
    *,
    batch: int = BATCH,
    steps: int = STEPS,
    fill: str = "blur",
    faithfulness: bool = True,
    seed: int = 0,
    count: int = COMPOSITES,
    examples: int = 6,
    progress: Callable[[int, int], None] | None = None,
    dask: str | None = None,
) -> Evaluation:
    """Score every map (see the module docstring) on ``scenes``.

    Args:
        model: a bundled model's name, an ``.onnx`` path, bytes or a ``ModelProto``.
        scenes: images at the model's input size with their object masks, or a function that makes them
            for a size ``(H, W)`` (default :func:`default_scenes`).
        options: PFV's options; ``weighting`` is the one the components are shown with; the input size,
            preset and layers are the model's.
        batch: images per PCA batch (PFV's colours are relative to their batch).
        steps: parts the pixels are deleted or inserted in, 2 to :data:`MAX_STEPS`.
        fill: what deleted pixels become: ``blur`` (a blurred copy) or ``mean`` (the preset's mean colour).
        faithfulness: measure the deletion and insertion curves (most of the run's time).
        seed: of the default composites, the random control, the order of tied pixels and the wrong pairings
            of the masks' check (:func:`~pfv_onnx.core.pairing.mask_check`).
        count: how many default composites.
        examples: images whose maps are kept for pictures.
        progress: called with the images finished and their total after each image (each batch on Dask).
        dask: ``"local"`` (a local cluster of two worker processes) or a scheduler's address: the batches
            run on Dask, one task each, to the same numbers (the model must be a file the workers can open).
    """
    _check_arguments(fill, batch, steps)
    options = options or Options()
    # Every earlier tap, so that each weighting is made from the same forward pass.
    tapped = options.replace(weighting="paper", hierarchical=False, activation_in_graph=False, keep_logits=options.keep_logits or faithfulness)
    featurizer = Featurizer(model, tapped)
    size = featurizer.size
    if faithfulness:
        _check_curves(featurizer, steps)
    if scenes is None or callable(scenes):
        scenes = (scenes or (lambda shape: default_scenes(shape, count, seed)))(size)
    scenes = _checked(scenes, size)
    started = time.perf_counter()
    measure = Measure(options, fill, steps, seed, examples, faithfulness)
    if dask is None:
        scorer = Scorer(model, featurizer, options.threads) if faithfulness else None
        run = Run(featurizer, measure, scorer, [s.mask for s in scenes], len(scenes), progress)
        for start in range(0, len(scenes), batch):
            run.batch(start, scenes[start : start + batch])
    else:
        run = run_on_dask(dask, featurizer, tapped, measure, scenes, batch, progress)
    summary = summarise(run.per_image, steps, np.stack(run.aucs), seed)
    summary.update(model=featurizer.describe()["model"], weighting=options.weighting, hierarchical=options.hierarchical, batch=batch,
                   fill=fill if faithfulness else None, seconds=round(time.perf_counter() - started, 1))
    return Evaluation(summary, {key: np.stack(values) for key, values in run.kept.items()})


def _check_curves(featurizer: Featurizer, steps: int) -> None:
    """Refuse, with one line, curves the model cannot give: no class scores, or more steps than pixels."""
    require_scores(featurizer.logits_output)
    if steps > featurizer.size[0] * featurizer.size[1]:
        raise PFVError(f"{steps} steps are more than the {featurizer.size[0]} x {featurizer.size[1]} pixels of the model's input")


def _check_arguments(fill: str, batch: int, steps: int) -> None:
    """Refuse, with one line, a fill, batch or number of steps :func:`evaluate` does not take."""
    if fill not in FILLS:
        raise PFVError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")
    if batch < 1:
        raise PFVError("evaluate needs at least 1 image per batch")
    if not 2 <= steps <= MAX_STEPS:
        raise PFVError(f"steps must be from 2 to {MAX_STEPS} (each step costs two forward passes of every map of every image), got {steps}")


def _checked(scenes: Sequence[Scene], size: tuple[int, int]) -> list[Scene]:
    """The scenes with bool masks; refused unless each is at ``size`` with an object that does not fill it."""
    checked = []
    for scene in scenes:
        mask = np.asarray(scene.mask).astype(bool, copy=False)  # no second copy of a bool mask
        if scene.image.shape != (*size, 3) or scene.image.dtype != np.uint8 or mask.shape != size:
            raise PFVError(f"{scene.name}: expected a {size[0]} x {size[1]} RGB uint8 image and mask (the model's input size)")
        if mask.all() or not mask.any():
            raise PFVError(f"{scene.name}: the mask must mark some of the image and leave some of it")
        checked.append(Scene(scene.image, mask, scene.name))
    if not checked:
        raise PFVError("no images to evaluate")
    return checked


def summarise(per_image: list[dict[str, Any]], steps: int, aucs: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Means over the images per map, the components' importance and the controls' verdict; ``aucs``
    ``(images, maps, 1 + K)`` as :func:`~pfv_onnx.core.pairing.mask_check` takes them."""
    names = list(per_image[0]["maps"])
    faithful = "deletion_curve" in per_image[0]["maps"][names[0]]
    maps: dict[str, dict[str, Any]] = {}
    for name in names:
        rows = [entry["maps"][name] for entry in per_image]
        scores = {metric: round(float(np.mean([r[metric] for r in rows])), 4) for metric in LOCALISATION}
        if faithful:
            deletion = np.mean([r["deletion_curve"] for r in rows], axis=0)
            insertion = np.mean([r["insertion_curve"] for r in rows], axis=0)
            for r in rows:  # each image keeps the areas, the summary the mean curves
                r["deletion"] = round(relevance.curve_area(r.pop("deletion_curve")), 4)
                r["insertion"] = round(relevance.curve_area(r.pop("insertion_curve")), 4)
            scores["deletion"] = round(float(np.mean([r["deletion"] for r in rows])), 4)
            scores["insertion"] = round(float(np.mean([r["insertion"] for r in rows])), 4)
            scores["faithfulness"] = round(scores["insertion"] - scores["deletion"], 4)
            scores["curves"] = {"deletion": rounded(deletion), "insertion": rounded(insertion)}
        maps[name] = scores
    components = []
    if faithful:
        k = 1
        while component_name(k) in maps:
            components.append({"component": k, "importance": maps[component_name(k)]["faithfulness"]})
            k += 1
    return {
        "images": len(per_image),
        "steps": steps if faithful else None,
        "fractions": [round(k / steps, 4) for k in range(steps + 1)] if faithful else None,
        "maps": maps,
        "components": components,
        "controls": controls(maps, _mask_check(aucs, names, seed), len(per_image)),
        "per_image": per_image,
    }


def _mask_check(aucs: np.ndarray, names: Sequence[str], seed: int) -> dict[str, Any] | None:
    """:func:`~pfv_onnx.core.pairing.mask_check` of the maps (``names``) that are not controls, the best one
    named."""
    kept = [j for j, name in enumerate(names) if name not in CONTROLS]
    check = mask_check(aucs[:, kept], seed)
    return None if check is None else {"map": names[kept[check.pop("best")]], **check}


def controls(maps: dict[str, dict[str, Any]], masks: dict[str, Any] | None, images: int) -> dict[str, Any]:
    """The checks of the module docstring on the summarised ``maps`` and the mask check of the
    ``images``: the numbers and the problems found."""
    random_auc = maps[RANDOM]["auc"]
    problems = []
    if abs(random_auc - 0.5) > RANDOM_TOLERANCE:
        problems.append(f"the random control's ROC-AUC is {random_auc:.3f}, not 0.5 within {RANDOM_TOLERANCE}: the metric is off")
    needed = min_mask_images()
    if images < needed:
        problems.append(f"{images} image{'s are' if images > 1 else ' is'} too few to show that the masks belong to their images (at least {needed} needed)")
    elif masks["lead"] < MIN_MASK_LEAD or masks["p_value"] >= MASK_P_VALUE:
        problems.append(
            f"no map finds the objects clearly better against their own masks than against other images' (the best, {masks['map']}: "
            f"ROC-AUC {masks['own_auc']:.3f} against {masks['other_auc']:.3f}, a lead of {masks['lead']:+.3f}, which wrong pairings "
            f"reach in {masks['p_value']:.1%} of cases; needed: {MIN_MASK_LEAD} and {MASK_P_VALUE:.0%}): the masks may not belong to "
            "their images, or the network sees nothing"
        )
    drop = None
    if "curves" in maps[RANDOM]:
        whole = maps[RANDOM]["curves"]["deletion"]  # every map's curve starts at the image and ends at the fill
        drop = whole[0] - whole[-1]
        if drop < MIN_DROP:
            problems.append(
                f"filling the whole image lowers the top class's probability by {drop:.3f} on average (less than {MIN_DROP}): "
                "the curves cannot tell the maps apart"
            )
    return {"random_auc": random_auc, "masks": masks, "probability_drop": None if drop is None else round(drop, 4), "trustworthy": not problems, "problems": problems}
