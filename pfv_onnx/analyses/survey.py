"""``pfv-onnx survey``: do a model's features separate the classes of a new dataset? (paper 5.2, figs 6-8)

For a folder-per-class dataset: a seeded sample of ``K`` images per class analysed as one batch, shown as a
grid of PFV over greyscale copies of the photos (a row per class). Each class's principal-feature colour is
the mean, over its sampled images, of the mean PFV colour over each image's foreground (the 30% most
active pixels); classes whose colours are close share features, and PFV predicts them to be confused
(similarity ``1 - |c_i - c_j| / sqrt(3)``).

``probe`` then checks that prediction: a linear classifier (softmax regression) trained on the frozen,
globally pooled ``F_N`` of every image, on a seeded, stratified two-thirds of each class, is scored on the
rest; its soft confusion (the mean probability given to class ``j`` for images of class ``i``) is compared
with PFV's similarity by rank correlation over the class pairs.

:func:`survey` returns a :class:`Survey` and writes nothing; :mod:`pfv_onnx.render.survey` writes its page, and
:meth:`pfv_onnx.PFV.survey` returns it as a :class:`~pfv_onnx.results.SurveyResult` that saves and shows itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.linear_probe import confusion, fit_probe, stratified_split
from ..core.metrics import foreground, rank_correlation
from ..errors import ImageError, PFVError
from ..images.preprocess import find_images
from ..runtime.featurizer import Featurizer
from ..runtime.stream import BatchStream, Decoded, plan_batches
from ..util.console import plural
from .colouring import BatchResult

TEST_SHARE = 1 / 3
CONFUSED_PAIRS = 3
PROBE_BATCH = 32


@dataclass(repr=False)
class Survey:
    """A survey: ``summary`` (what ``summary.json`` holds), the sample's PFV ``batch`` (``rgb`` ``(n, H, W, 3)``
    float32 and the ``images`` under it), each sampled image's class index ``labels`` ``(n,)``, the class
    ``names``, their colours ``(K, 3)`` and ``similarity`` ``(K, K)`` in ``[0, 1]``, and ``per_class``."""

    summary: dict[str, Any]
    batch: BatchResult
    labels: np.ndarray
    names: list[str]
    colours: np.ndarray
    similarity: np.ndarray
    per_class: int

    def __repr__(self) -> str:
        pairs = "; ".join(f"{a} and {b} ({p['similarity']:.2f})" for p in self.summary["predicted_confusions"] for a, b in [p["classes"]])
        lines = [f"Survey of {plural(len(self.names), 'class')} over {plural(len(self.labels), 'sampled image')}",
                 f"  predicted to be confused: {pairs}"]
        if "probe" in self.summary:
            p = self.summary["probe"]
            lines.append(f"  linear probe: {p['accuracy']:.1%} held-out accuracy (chance {p['chance']:.0%}), "
                         f"similarity vs confusion {p['similarity_vs_confusion']:.2f}")
        return "\n".join(lines)


def dataset_classes(folder: Path) -> dict[str, list[Path]]:
    """``class name -> image paths`` of a folder-per-class root (:func:`~pfv_onnx.images.preprocess.find_images`)."""
    if not folder.is_dir():
        raise PFVError(f"{folder}: no such folder (a dataset is a folder with one subfolder of images per class)")
    classes: dict[str, list[Path]] = {}
    for f in find_images([folder]):
        if f.label is None:
            raise PFVError(f"{folder}: holds images itself; a dataset is a folder with one subfolder of images per class")
        classes.setdefault(f.label, []).append(f.path)
    if len(classes) < 2:
        raise PFVError(f"{folder}: needs at least two subfolders of images (one per class), found {len(classes)}")
    return classes


def class_colours(rgb: np.ndarray, activation: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """``(K, 3)`` mean PFV colour per class, over each image's foreground."""
    per_image = np.array([x[foreground(a)].mean(axis=0) for x, a in zip(rgb, activation)])
    return np.array([per_image[labels == k].mean(axis=0) for k in range(classes)])


def similarity(colours: np.ndarray) -> np.ndarray:
    """``(K, K)`` similarity of class colours in ``[0, 1]``: ``1 - distance / sqrt(3)``."""
    distance = np.linalg.norm(colours[:, None, :] - colours[None, :, :], axis=-1)
    return 1.0 - distance / np.sqrt(3.0)


def survey(pfv, dataset: str | Path, per_class: int = 1, seed: int = 0, probe: bool = False) -> Survey:
    """Survey the folder-per-class ``dataset`` with ``pfv`` (a :class:`~pfv_onnx.PFV`; see the module docstring)."""
    dataset = Path(dataset)
    classes = dataset_classes(dataset)
    names = list(classes)
    if probe and min(len(paths) for paths in classes.values()) < 2:
        raise PFVError("--probe needs at least two images per class (one to train on, one to test)")
    crops, sample, labels, skipped = _sample(pfv.featurizer, classes, per_class, seed)
    features = pfv.featurizer.forward(pfv.featurizer.model_input(crops), maps=pfv._needs_maps())
    batch = pfv._colour(features, crops, [p.stem for p in sample])
    colours = class_colours(batch.rgb, batch.activation, labels, len(names))
    sim = similarity(colours)
    pairs = sorted(((float(sim[i, j]), names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))), reverse=True)
    summary = {
        "dataset": str(dataset),
        "classes": {name: len(classes[name]) for name in names},
        "sample": [{"class": names[k], "source": str(p)} for k, p in zip(labels, sample)],
        "seed": seed,
        "options": pfv.options.view("method"),
        "class_colours": {name: [round(float(v), 4) for v in c] for name, c in zip(names, colours)},
        "similarity": [[round(float(v), 4) for v in row] for row in sim],
        "predicted_confusions": [{"classes": [a, b], "similarity": round(s, 4)} for s, a, b in pairs[:CONFUSED_PAIRS]],
        "explained_variance_ratio": [round(float(r), 6) for r in batch.explained_variance_ratio],
        "skipped": skipped,
    }
    if probe:
        summary["probe"] = _probe(pfv.featurizer, classes, sim, seed, skipped)
    return Survey(summary, batch, labels, names, colours, sim, per_class)


def _sample(featurizer: Featurizer, classes: dict[str, list[Path]], per_class: int, seed: int) -> tuple[np.ndarray, list[Path], np.ndarray, list[dict]]:
    """The seeded sample of ``per_class`` readable images per class: their ``(n, H0, W0, 3)`` crops, paths,
    class indices, and the files that could not be read on the way."""
    rng = np.random.default_rng(seed)
    crops, sample, labels, skipped = [], [], [], []
    for k, paths in enumerate(classes.values()):
        taken = 0
        for i in rng.permutation(len(paths)):  # the seeded order, past files that cannot be read
            if taken == per_class:
                break
            try:
                crops.append(featurizer.prepare(paths[i]))
            except ImageError as exc:
                skipped.append({"source": str(paths[i]), "reason": str(exc)})
                continue
            sample.append(paths[i])
            labels.append(k)
            taken += 1
    if len(set(labels)) < len(classes):
        raise PFVError("a class has no image that can be read")
    return np.stack(crops), sample, np.array(labels), skipped


def _pooled_features(featurizer: Featurizer, classes: dict[str, list[Path]], skipped: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """The globally pooled ``F_N`` ``(n, C)`` of every readable image of the dataset, and its class indices;
    the unreadable ones not yet in ``skipped`` are added to it."""
    items = [path for paths in classes.values() for path in paths]
    classes_of = np.concatenate([np.full(len(paths), k) for k, paths in enumerate(classes.values())])
    pooled: list[np.ndarray] = []
    kept: list[int] = []
    known = {s["source"] for s in skipped}

    def done(decoded: Decoded, outcome: np.ndarray | None) -> None:
        skipped.extend(s for s in decoded.skipped if s["source"] not in known)
        if outcome is not None:
            pooled.append(outcome)
            kept.extend(decoded.positions)

    BatchStream(featurizer, items, plan_batches(len(items), PROBE_BATCH)).run(lambda _d, f: f.final.mean(axis=(2, 3)), done)
    return np.concatenate(pooled), classes_of[kept]


def _probe(featurizer: Featurizer, classes: dict[str, list[Path]], sim: np.ndarray, seed: int, skipped: list[dict]) -> dict:
    """Train and score the linear probe on the pooled ``F_N`` of every readable image of the dataset."""
    names = list(classes)
    features, labels = _pooled_features(featurizer, classes, skipped)
    if np.bincount(labels, minlength=len(names)).min() < 2:
        raise PFVError("--probe needs at least two readable images per class")
    train, test = stratified_split(labels, TEST_SHARE, seed)
    model = fit_probe(features[train], labels[train], len(names))
    probabilities = model.probabilities(features[test])
    predicted = probabilities.argmax(axis=1)
    counts = confusion(labels[test], predicted, len(names))
    soft = np.array([probabilities[labels[test] == k].mean(axis=0) for k in range(len(names))])
    pairs = [(i, j) for i in range(len(names)) for j in range(i + 1, len(names))]
    observed = [soft[i, j] + soft[j, i] for i, j in pairs]
    return {
        "accuracy": round(float((predicted == labels[test]).mean()), 4),
        "chance": round(1.0 / len(names), 4),
        "train_images": int(len(train)),
        "test_images": int(len(test)),
        "confusion": counts.tolist(),
        "soft_confusion": [[round(float(v), 4) for v in row] for row in soft],
        "similarity_vs_confusion": round(rank_correlation(np.array([sim[i, j] for i, j in pairs]), np.array(observed)), 4),
    }
