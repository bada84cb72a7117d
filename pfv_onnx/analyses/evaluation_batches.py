"""One batch of an evaluation (:mod:`pfv_onnx.analyses.evaluate`): every map of its images, their
localisation scores and faithfulness curves, in process or as a Dask task.

On Dask each batch is a task: its images, and the masks of the other images they are checked against, go
with it; the workers open the model file themselves (:mod:`pfv_onnx.analyses.on_dask`), and the batches'
scores merge in order of position to what one process measures.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import centre_gaussian, class_activation_maps, eigen_cam, random_maps, relevance
from ..core.pairing import other_images
from ..images.composites import Scene
from ..options import WEIGHTINGS, Options
from ..runtime.featurizer import Featurizer
from .colouring import class_probabilities, colour
from .faithfulness import Scorer, fill_canvas
from .on_dask import on_cluster, task_config, worker_featurizer

CHANNEL_SUM, EIGENCAM, CAM = "channel sum of F_N", "EigenCAM", "CAM (top class)"
GAUSSIAN, RANDOM = "Gaussian (control)", "random (control)"
CONTROLS = (GAUSSIAN, RANDOM)


def picture_name(weighting: str) -> str:
    return f"PFV ({weighting})"


def map_name(weighting: str) -> str:
    """The name of a weighting's map (``final``'s is the channel sum of ``F_N``)."""
    return CHANNEL_SUM if weighting == "final" else f"weighting map ({weighting})"


def component_name(k: int) -> str:
    return f"component {k}"


@dataclass(frozen=True)
class Measure:
    """What an evaluation measures, the same in process and in every Dask task."""

    options: Options
    fill: str
    steps: int
    seed: int
    examples: int  # images whose maps are kept
    faithfulness: bool


@dataclass
class Run:
    """An evaluation under way, or a Dask task's part of one: what it scores the scenes with (``scorer``
    ``None``: localisation only), and what it has measured so far, image by image.

    ``masks`` holds, by position among all ``total`` scenes, the masks the images are also checked against
    (all of them in process, a task's batch's others on Dask)."""

    featurizer: Featurizer
    measure: Measure
    scorer: Scorer | None
    masks: Sequence[np.ndarray] | dict[int, np.ndarray]
    total: int
    progress: Callable[[int, int], None] | None = None
    alongside: bool = False  # other processes share the cores (a Dask worker's neighbours)
    per_image: list[dict[str, Any]] = field(default_factory=list)
    kept: dict[str, list[np.ndarray]] = field(default_factory=dict)
    aucs: list[np.ndarray] = field(default_factory=list)  # per image (maps, 1 + others): ROC-AUC against its own mask, then the others'

    def batch(self, start: int, part: Sequence[Scene]) -> None:
        """Score ``part``, the scenes from position ``start`` on, decomposed as one batch."""
        inputs = self.featurizer.model_input(np.stack([s.image for s in part]))
        features = self.featurizer.forward(inputs, maps=True, alongside=self.alongside)
        picture, maps = batch_maps(self.featurizer, features, self.measure.options, self.measure.seed + start)
        others = other_images(self.total)
        for i, scene in enumerate(part):
            own = {name: m[i] for name, m in maps.items()}
            # Against its own object and those of other images, from any batch: the masks' check.
            masks = np.stack([scene.mask, *(self.masks[j] for j in others[start + i])])
            self.aucs.append(np.stack([relevance.roc_aucs(m, masks) for m in own.values()]))
            entry = {"name": scene.name, "object_share": round(float(scene.mask.mean()), 4)}
            entry["maps"] = {name: {k: round(v, 4) for k, v in relevance.localisation(m, scene.mask, a).items()} for (name, m), a in zip(own.items(), self.aucs[-1])}
            if self.scorer is not None:
                entry["top_class"] = self._faithfulness(scene, own, features.logits[i : i + 1], entry["maps"])
            self.per_image.append(entry)
            if start + i < self.measure.examples:
                for key, value in [("image", scene.image), ("mask", scene.mask), ("picture", picture[i]), *own.items()]:
                    self.kept.setdefault(key, []).append(value)
            if self.progress is not None:
                self.progress(len(self.per_image), self.total)

    def _faithfulness(self, scene: Scene, maps: dict[str, np.ndarray], logits: np.ndarray, scores: dict[str, dict[str, Any]]) -> int:
        """Add each map's deletion and insertion curves of the image's top class (``logits`` ``(1, K)``) to its
        ``scores``; return that class."""
        assert self.scorer is not None
        top = int(np.argmax(class_probabilities(logits)[0]))
        canvas = fill_canvas(scene.image, self.measure.fill, self.featurizer.preset)
        for name, (deletion, insertion) in self.scorer.curves(scene.image, canvas, maps, top, self.measure.steps, self.measure.seed).items():
            scores[name].update(deletion_curve=deletion, insertion_curve=insertion)
        return top


# What a Dask task measured: its first position, and its run's per_image, aucs and kept.
TaskScores = tuple[int, list[dict[str, Any]], list[np.ndarray], dict[str, list[np.ndarray]]]


def run_on_dask(
    address: str, featurizer: Featurizer, tapped: Options, measure: Measure, scenes: list[Scene], batch: int, progress: Callable[[int, int], None] | None
) -> Run:
    """The batches of :func:`~pfv_onnx.analyses.evaluate.evaluate` as Dask tasks (:mod:`pfv_onnx.analyses.on_dask`), one batch each, their
    scenes sent with them, each worker opening the model with the ``tapped`` options: what they measured,
    merged in order of position."""
    config = task_config(featurizer, tapped, [], "evaluate", keep_logits=tapped.keep_logits)
    starts = list(range(0, len(scenes), batch))
    others = other_images(len(scenes))
    finished = Run(featurizer, measure, None, [], len(scenes))

    def work(client: Any) -> list[TaskScores]:
        from dask.distributed import as_completed

        parts = client.scatter([scenes[start : start + batch] for start in starts])
        masks = client.scatter([{int(j): scenes[j].mask for j in np.unique(others[start : start + batch])} for start in starts])
        futures = client.map(_task, [config] * len(starts), [measure] * len(starts), starts, parts, masks, [len(scenes)] * len(starts), pure=False)
        done = []
        for future in as_completed(futures, loop=client.loop):  # the client is not the default one
            done.append(future.result())
            if progress is not None:
                progress(sum(len(per_image) for _, per_image, _, _ in done), len(scenes))
        return done

    for _, per_image, aucs, kept in sorted(on_cluster(address, "evaluation", work), key=lambda found: found[0]):
        finished.per_image += per_image
        finished.aucs += aucs
        for key, values in kept.items():
            finished.kept.setdefault(key, []).extend(values)
    return finished


@functools.lru_cache(maxsize=4)
def _worker_scorer(config: str) -> Scorer:
    """The faithfulness scorer of a task's worker process, opened once per configuration."""
    data = json.loads(config)
    return Scorer(data["model"], worker_featurizer(config), Options.from_dict(data["options"]).threads)


def _task(config: str, measure: Measure, start: int, part: list[Scene], masks: dict[int, np.ndarray], total: int) -> TaskScores:
    """One batch of scenes from position ``start`` on, measured in a Dask worker (``masks``: the masks of all
    ``total`` scenes its images are checked against): ``start`` and its run's ``per_image``, ``aucs``, ``kept``."""
    run = Run(worker_featurizer(config), measure, _worker_scorer(config) if measure.faithfulness else None, masks, total, alongside=True)
    run.batch(start, part)
    return start, run.per_image, run.aucs, run.kept


def batch_maps(featurizer: Featurizer, features, options: Options, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The PFV picture with ``options.weighting`` ``(B, H, W, 3)`` float32, and every map ``(B, H, W)``
    float32 by name, of one batch's features (all earlier taps' maps included)."""
    size, batch = featurizer.size, features.final.shape[0]
    # One decomposition for all the weightings: it does not depend on them.
    first = colour(features, size, options.weighted(WEIGHTINGS[0]), blank=featurizer.blank_for(WEIGHTINGS[0]))
    visuals = {WEIGHTINGS[0]: first}
    for w in WEIGHTINGS[1:]:
        visuals[w] = colour(features, size, options.weighted(w), blank=featurizer.blank_for(w), decomposed=(first.pca, first.scores))
    maps = {picture_name(w): visuals[w].saliency for w in WEIGHTINGS}
    maps.update({map_name(w): visuals[w].activation for w in WEIGHTINGS})
    chosen = visuals[options.weighting]
    for k in range(chosen.component_saliency.shape[-1]):
        maps[component_name(k + 1)] = chosen.component_saliency[..., k]
    maps[EIGENCAM] = eigen_cam(features.final, size)
    head = featurizer.head
    if head is not None and features.logits is not None and features.logits.shape[1] == head.weight.shape[0]:
        top = np.argmax(features.logits, axis=1)[:, None]
        maps[CAM] = class_activation_maps(features.final, head.weight, top, size)[:, 0]
    maps[GAUSSIAN] = centre_gaussian(batch, size)
    maps[RANDOM] = random_maps(batch, size, seed)
    return chosen.rgb, maps
