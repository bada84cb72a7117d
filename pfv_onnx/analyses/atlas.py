"""The component atlas: what each colour of a fitted basis responds to, over a whole dataset.

For each component of the basis and each of its sides (positive: the picture gains the component's colour;
negative: it loses it) the atlas finds, in one streamed pass over the data:

- the images where that side is strongest (its mean over the image's ``F_N`` cells),
- the patches where it peaks (the region around its strongest cell, one per image, sized by the layer's
  receptive field but at most half the image: a deep layer's theoretical field covers the whole image,
  the region that matters is far smaller),
- the classes a linear head after ``F_N`` pushes up and down along it (the head's weights times the
  component's direction), when the model has such a head,
- and, over the whole component, its share of the variance and its stability: the |cosine| between the
  component fitted on the images at even positions and on those at odd positions.

Memory stays flat: a batch at a time, the leaders kept, the two halves' moments merged as they come. When
the data is a folder-per-class root, each side's leading images get a purity (the share of their most
common class). :mod:`pfv_onnx.render.atlas` writes it as a page.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core import FeatureMoments, FittedBasis, feature_matrix
from ..core.atlas import Leaders, head_effects, image_strengths, patch_box, purity, ranked_classes, stability
from ..core.decomposition import pca_from_covariance
from ..errors import ImageError, PFVError
from ..runtime.features import Features
from ..util.files import read_json
from ..graph.receptive import receptive_field
from ..images.labels import class_label
from ..images.preprocess import find_images
from ..runtime.stream import BatchStream, Decoded, plan_batches
from .on_dask import as_given, on_cluster, shards, task_config, tree_reduce, worker_featurizer

TOP_IMAGES = 8
TOP_CLASSES = 5
# Images each half needs before the components fitted on it say anything about stability.
MIN_HALF = 8
SIDE_NAMES = ("positive", "negative")


@dataclass
class Atlas:
    """An atlas (see the module docstring).

    Attributes:
        summary: JSON data: the model, the basis, and per component its variance share, stability and, per
            side, the leading images (paths, classes, strengths), patches (boxes) and head classes.
        images: per ``(component, side)``, the leading images' ``(H0, W0, 3)`` uint8 crops.
        patches: per ``(component, side)``, the leading patches, ``(s, s, 3)`` uint8.
        basis: the basis described, and ``basis_header`` what its file records (both written beside the
            page when the atlas fitted the basis itself).
    """

    summary: dict[str, Any]
    images: dict[tuple[int, int], list[np.ndarray]]
    patches: dict[tuple[int, int], list[np.ndarray]]
    basis: FittedBasis | None = None
    basis_header: dict[str, Any] | None = None


def atlas(
    pfv,
    data: str | Path | Sequence[str | Path],
    top: int = TOP_IMAGES,
    batch_size: int = 32,
    dask: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Atlas:
    """The atlas of the basis of ``pfv`` (a :class:`pfv_onnx.PFV`) over ``data`` (files, folders, or a
    folder-per-class root), fitting the basis on ``data`` first when ``pfv`` has none; with ``dask`` (as
    :meth:`PFV.fit` takes it) the fit and the scan over the data run on Dask, to the same atlas.

    Args:
        top: leading images and patches kept per component and side.
        progress: called with the number of images each finished batch held and the number of image reads in
            all (three per image when the basis is fitted here: the fit reads the data twice).
    """
    if top < 1:
        raise PFVError(f"top must be at least 1, got {top}")
    files = find_images([data] if isinstance(data, (str, Path)) else data)
    paths, labels = [f.path for f in files], [f.label for f in files]
    fitted_here = pfv.basis is None
    # One count over the whole work: the fit's two passes over the data when it fits here, then the scan.
    reads = (3 if fitted_here else 1) * len(paths)
    step = (lambda done, _total: progress(done, reads)) if progress is not None else (lambda done, total: None)
    if fitted_here:
        pfv.fit(paths, batch_size=batch_size, dask=dask, progress=step)
    featurizer, basis = pfv.featurizer, pfv.basis
    scan = _scanned(pfv, paths, top, batch_size, dask, step)
    ranked, names = _head_classes(featurizer, basis)
    stable = _stability(scan.halves, basis.pca.n_components)
    field = receptive_field(featurizer.tapped.model, featurizer.final, featurizer.input.name)
    side_px = max(1, min(field.size, min(featurizer.size) // 2))
    unread = {s["source"] for s in scan.skipped}
    read = [label for path, label in zip(paths, labels) if str(path) not in unread]

    crop = functools.lru_cache(maxsize=None)(lambda position: _crop(featurizer, paths[position]))  # each image decoded once
    components, images, patches = [], {}, {}
    for j in range(basis.pca.n_components):
        sides = []
        for side in range(2):
            slot = 2 * j + side
            boxes = [patch_box(cell, scan.grid, featurizer.size, side_px) for _, cell in scan.peaks.items[slot]]
            images[j, side] = [crop(p) for p in scan.strongest.items[slot]]
            patches[j, side] = [crop(p)[t:b, l:r] for (p, _), (t, l, b, r) in zip(scan.peaks.items[slot], boxes)]
            entry = _side_entry(scan, slot, boxes, paths, labels, read)
            if ranked is not None:  # the classes the side moves up, and down
                entry.update({f"classes_{way}": [_class(c, names) for c in ranked[j, side, k]] for k, way in enumerate(("up", "down"))})
            sides.append(entry)
        components.append({"component": j + 1, "explained_variance_ratio": round(float(basis.pca.explained_variance_ratio[j]), 6),
                           "stability": None if stable is None else round(float(stable[j]), 4), "sides": sides})
    summary = {
        **pfv.describe(),
        "data": {"images": len(read), "classes": sorted({x for x in read if x is not None})},
        "basis_fitted_here": fitted_here,
        "receptive_field": {"size": field.size, "stride": field.stride, "patch": side_px},
        "head": ranked is not None, "components": components,
        "skipped": scan.skipped,
    }
    return Atlas(summary, images, patches, basis, pfv._basis_header(basis))


def _head_classes(featurizer, basis) -> tuple[np.ndarray | None, list[str] | None]:
    """The classes the model's linear head moves most, up and down, by each side of each component (as
    :func:`~pfv_onnx.core.atlas.ranked_classes` ranks them), and the class names; ``None`` for both without a
    head."""
    head = featurizer.head
    if head is None:
        return None, None
    # at most half the classes each way, so that no class is said to go both up and down
    ranked = ranked_classes(head_effects(head.weight, basis.pca.components), min(TOP_CLASSES, head.weight.shape[0] // 2))
    return ranked, featurizer.class_names_for(head.weight.shape[0])


def _side_entry(scan: _Scan, slot: int, boxes: list, paths: list[Path], labels: list[str | None], read: list[str | None]) -> dict[str, Any]:
    """``summary.json``'s entry for one component's side (``slot``): its leading images and patches, and
    how pure their classes are against chance (the majority class's share of the images read)."""
    leaders = scan.strongest.items[slot]
    share, majority = purity([labels[p] for p in leaders])
    return {
        "side": SIDE_NAMES[slot % 2],
        "images": [{"path": str(paths[p]), "class": labels[p], "strength": round(v, 6)} for p, v in zip(leaders, scan.strongest.values[slot])],
        "patches": [
            {"path": str(paths[p]), "class": labels[p], "box": list(box), "strength": round(v, 6)}
            for (p, _), box, v in zip(scan.peaks.items[slot], boxes, scan.peaks.values[slot])
        ],
        "purity": round(share, 4) if majority is not None else None,
        "majority": majority,
        "chance": round(read.count(majority) / len(read), 4) if majority is not None else None,
    }


@dataclass
class _Scan:
    """What the pass over the data keeps: leading images (by mean) and patches (by peak) per component and
    side (slot ``2 * j + side``), the moments of each half, the unreadable files, and ``F_N``'s ``(h, w)``."""

    strongest: Leaders
    peaks: Leaders
    halves: list[FeatureMoments | None]
    skipped: list[dict]
    grid: tuple[int, int] | None = None

    def merge(self, other: _Scan) -> _Scan:
        """This scan and ``other``'s, of the shard after it: what one scan over both gives."""
        halves = [b if a is None else a if b is None else a.merge(b) for a, b in zip(self.halves, other.halves)]
        return _Scan(self.strongest.merge(other.strongest), self.peaks.merge(other.peaks), halves, self.skipped + other.skipped, self.grid or other.grid)


def _scan(featurizer, basis, paths: list[Path], top: int, batch_size: int, progress: Callable[[int, int], None] | None, first: int = 0) -> _Scan:
    """One streamed pass over ``paths`` under ``basis``, in flat memory; ``first``: the position of
    ``paths[0]`` in the data (a shard's)."""
    k = basis.pca.n_components
    scan = _Scan(Leaders(2 * k, top), Leaders(2 * k, top), [None, None], [])

    def finish(decoded: Decoded, features: Features) -> tuple:
        parity = (np.asarray(decoded.positions) + first) % 2
        per_half = []
        for half in (0, 1):
            chosen = features.final[parity == half]
            per_half.append(FeatureMoments.of(feature_matrix(chosen), [], len(chosen)) if len(chosen) else None)
        scores = basis.project(features.final)
        return image_strengths(scores), per_half, scores.shape[1:3]

    def done(decoded: Decoded, outcome: tuple | None) -> None:
        scan.skipped.extend(decoded.skipped)
        if outcome is not None:
            (mean, peak, cell), per_half, scan.grid = outcome
            positions = [first + p for p in decoded.positions]
            for slot in range(2 * k):
                j, side = divmod(slot, 2)
                scan.strongest.offer(slot, mean[:, j, side], positions)
                scan.peaks.offer(slot, peak[:, j, side], [(p, tuple(int(v) for v in cell[b, j, side])) for b, p in enumerate(positions)])
            for half, moments in enumerate(per_half):
                if moments is not None:
                    scan.halves[half] = moments if scan.halves[half] is None else scan.halves[half].merge(moments)
        if progress is not None:
            progress(len(decoded.positions) + len(decoded.skipped), len(paths))

    BatchStream(featurizer, paths, plan_batches(len(paths), batch_size)).run(finish, done)
    return scan


def _scanned(pfv, paths: list[Path], top: int, batch_size: int, dask: str | None, progress: Callable[[int, int], None] | None) -> _Scan:
    """The scan of ``paths`` under ``pfv``'s basis, in process or on Dask; refused when no image could be read."""
    scan = _scan_on_dask(pfv, paths, top, batch_size, dask) if dask is not None else _scan(pfv.featurizer, pfv.basis, paths, top, batch_size, progress)
    if scan.grid is None:
        raise PFVError("no image could be read")
    return scan


def _task_scan(config: str, paths: list[str], first: int, top: int, batch_size: int, basis: FittedBasis) -> _Scan:
    return _scan(worker_featurizer(config), basis, [Path(p) for p in paths], top, batch_size, None, first)


def _scan_on_dask(pfv, paths: list[Path], top: int, batch_size: int, address: str) -> _Scan:
    """:func:`_scan` in shards on Dask (:mod:`pfv_onnx.analyses.on_dask`), merged in order of position."""
    config = task_config(pfv.featurizer, pfv.options, paths, "the atlas")
    parts = shards(paths, batch_size)
    firsts = [sum(len(part) for part in parts[:i]) for i in range(len(parts))]
    n = len(parts)
    scan = on_cluster(address, "atlas", lambda client: tree_reduce(
        client, client.map(_task_scan, [config] * n, parts, firsts, [top] * n, [batch_size] * n, [pfv.basis] * n, pure=False), _Scan.merge))
    scan.skipped = as_given(scan.skipped, paths)
    return scan


def card_anchor(j: int) -> str:
    """The id of component ``j``'s card in the atlas page, for links from reports."""
    return f"component-{j}"


# An atlas's summary.json larger than this is refused: it lists a few images per component and side.
MAX_SUMMARY_BYTES = 64 * 2**20


def read_atlas(folder: str | Path, fingerprint: str) -> dict[str, Any]:
    """What a report shows of the atlas written to ``folder`` (by ``pfv-onnx atlas``) for the basis with
    ``fingerprint``: per component and side, the leading class and its share and the classes pushed up.

    Raises:
        PFVError: no atlas there, a damaged one, or one of another basis.
    """
    path = Path(folder) / "summary.json"
    try:
        summary = read_json(path, MAX_SUMMARY_BYTES, "an atlas's summary")
        made_with = summary["basis"]["fingerprint"]
        components = [
            {"component": _checked(int, c["component"]), "anchor": card_anchor(_checked(int, c["component"])), "sides": [
                {"side": _checked(str, side["side"]), "majority": _checked(str, side.get("majority"), optional=True),
                 "purity": _checked(float, side.get("purity"), optional=True),
                 "classes_up": [class_label(_checked(int, x["class"]), _checked(str, x["label"], optional=True)) for x in side.get("classes_up", [])[:3]]}
                for side in c["sides"]
            ]}
            for c in summary["components"]
        ]
    except FileNotFoundError:
        raise PFVError(f"{folder}: holds no atlas (write one with pfv-onnx atlas --out {folder})") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PFVError(f"{path}: not an atlas's summary ({type(exc).__name__})") from None
    if made_with != fingerprint:
        raise PFVError(f"{folder}: this atlas describes another basis (pfv-onnx atlas --basis BASIS makes one of yours)")
    return {"page": str(Path(folder) / "index.html"), "components": components}


def _checked(kind: type, value: Any, optional: bool = False) -> Any:
    """``value`` when it is of ``kind`` (an int counts as a float; a float must lie in 0..1), else TypeError."""
    if value is None and optional:
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) or (kind is float and not 0.0 <= value <= 1.0):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


def _stability(halves: list[FeatureMoments | None], k: int) -> np.ndarray | None:
    """|cosine| of the components fitted on each half; ``None`` when a half has fewer than
    :data:`MIN_HALF` images (or too few pixels for ``k`` components)."""
    if any(h is None or h.images < MIN_HALF or h.count <= k for h in halves):
        return None
    fits = [pca_from_covariance(h.mean, h.scatter / (h.count - 1), h.count, k).components for h in halves]
    return stability(*fits)


def _crop(featurizer, path: Path) -> np.ndarray:
    try:
        return featurizer.prepare(path)
    except ImageError as exc:  # read in the pass, gone since
        raise PFVError(f"{path}: could not be read again ({exc})") from None


def _class(index: int, names: list[str] | None) -> dict[str, Any]:
    return {"class": int(index), "label": names[index] if names and index < len(names) else None}
