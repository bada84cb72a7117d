"""Fitting a basis on any number of images, in process or on Dask (``PFV.fit`` and ``pfv-onnx fit``).

Two passes over the data (see :mod:`pfv_onnx.core.fitted`): moments of ``F_N`` to fix the components,
then the statistics of the weighted components to fix the normalisation. Each pass streams the images
(:mod:`pfv_onnx.runtime.stream`); each batch's partial result is small (a ``C x C`` matrix, a few numbers) and
partial results merge in any order. On Dask (:mod:`pfv_onnx.analyses.on_dask`) each task reads a shard
of a few batches and the partial results merge in a tree.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...core import BlankResponse, FeatureMoments, FittedBasis, ValueStats, feature_matrix, weighted_stats, weighting_sources
from ...errors import PFVError
from ...runtime.features import Features
from ...runtime.featurizer import Featurizer, ImageLike
from ...options import Options
from ...runtime.stream import BatchStream, Decoded, plan_batches
from ..on_dask import as_given, on_cluster, shards, task_config, tree_reduce, worker_featurizer


def fit_basis(
    featurizer: Featurizer, items: Sequence[ImageLike], options: Options, batch_size: int = 32, dask: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[FittedBasis, list[dict]]:
    """Fit a basis on every image of ``items`` with the ``method`` options; returns it and the items
    that could not be read (``{"source", "reason"}``).

    Args:
        batch_size: images per forward pass (any size gives the same basis).
        dask: ``None`` to fit in this process, ``"local"`` for a local Dask cluster, or a scheduler address.
        progress: in this process, called with the images each finished batch held and the number the two
            passes read in all (twice the items).
    """
    if batch_size < 1:
        raise PFVError(f"batch size must be at least 1, got {batch_size}")
    if dask is not None:
        return _fit_on_dask(featurizer, items, options, batch_size, dask)
    counted = _counted(progress, 2 * len(items))
    moments, skipped = shard_moments(featurizer, items, batch_size, counted)
    basis = _basis(moments, options)
    return _complete(basis, shard_stats(featurizer, items, batch_size, basis, counted)), skipped


def _counted(progress: Callable[[int, int], None] | None, total: int) -> Callable[[int], None] | None:
    """``progress`` with its total bound: called with the images of each finished batch."""
    return None if progress is None else lambda done: progress(done, total)


def basis_of(features: Features, size: tuple[int, int], options: Options, images: int, blank: BlankResponse | None = None) -> FittedBasis:
    """The basis fitted on the features of one batch already in memory (both passes on them); ``blank``:
    the featureless image's channel sums, for the ``focus`` weighting."""
    if features.maps is None:
        raise PFVError("fitting needs the per-layer maps: forward(inputs, maps=True)")
    sources = _checked(weighting_sources, features.final, features.maps, options.weighting, blank)
    moments = FeatureMoments.of(feature_matrix(features.final), sources, images)
    basis = _basis(moments, options)
    return _complete(basis, _checked(weighted_stats, features.final, features.maps, size, basis, 1, blank))


def shard_moments(
    featurizer: Featurizer, items: Sequence[ImageLike], batch_size: int, progress: Callable[[int], None] | None = None
) -> tuple[FeatureMoments | None, list[dict]]:
    """Pass 1 over ``items``: the merged :class:`FeatureMoments` of their batches (with the peaks of the
    featurizer's weighting's sources), and the skipped items."""
    weighting = featurizer.weighting
    blank = featurizer.blank_for(weighting)

    def moments(decoded: Decoded, features: Features) -> FeatureMoments:
        sources = _checked(weighting_sources, features.final, features.maps, weighting, blank)
        return _checked(FeatureMoments.of, feature_matrix(features.final), sources, len(decoded.positions))

    return _reduce(featurizer, items, batch_size, moments, FeatureMoments.merge, progress)


def shard_stats(
    featurizer: Featurizer, items: Sequence[ImageLike], batch_size: int, basis: FittedBasis, progress: Callable[[int], None] | None = None
) -> tuple[ValueStats, ValueStats]:
    """Pass 2 over ``items``: the statistics of their weighted components under ``basis`` and of their
    activation maps."""
    blank = featurizer.blank_for(basis.weighting)

    def stats(_decoded: Decoded, features: Features) -> tuple[ValueStats, ValueStats]:
        return _checked(weighted_stats, features.final, features.maps, featurizer.size, basis, 1, blank)

    merged, _ = _reduce(featurizer, items, batch_size, stats, _merge_stats, progress)
    return merged if merged is not None else (ValueStats(), ValueStats())


def _reduce(
    featurizer: Featurizer, items: Sequence[ImageLike], batch_size: int, finish: Callable[[Decoded, Features], Any], merge: Callable,
    progress: Callable[[int], None] | None = None,
) -> tuple[Any, list[dict]]:
    """``finish`` on each batch (in the stream's workers), the outcomes merged in order as they come; and
    the items that could not be read. ``progress``: called with the items of each finished batch."""
    merged: list = [None]
    skipped: list[dict] = []

    def done(decoded: Decoded, outcome: Any) -> None:
        skipped.extend(decoded.skipped)
        if outcome is not None:
            merged[0] = outcome if merged[0] is None else merge(merged[0], outcome)
        if progress is not None:
            progress(len(decoded.positions) + len(decoded.skipped))

    BatchStream(featurizer, items, plan_batches(len(items), batch_size), maps=True).run(finish, done)
    return merged[0], skipped


def _checked(step: Callable, *args: Any) -> Any:
    try:
        return step(*args)
    except ValueError as exc:  # NaN or infinite features
        raise PFVError(f"cannot fit the basis: {exc}") from None


def _basis(moments: FeatureMoments | None, options: Options) -> FittedBasis:
    if moments is None:
        raise PFVError("no image could be read to fit a basis")
    return _checked(moments.basis, options.n_components, options.hierarchical, options.n_sigma, options.weighting)


def _complete(basis: FittedBasis, stats: tuple[ValueStats, ValueStats]) -> FittedBasis:
    return _checked(basis.with_statistics, *stats)


# ---- Dask -------------------------------------------------------------------------------------------


def _task_moments(config: str, paths: list[str], batch_size: int):
    return shard_moments(worker_featurizer(config), [Path(p) for p in paths], batch_size)


def _task_stats(config: str, paths: list[str], batch_size: int, basis: FittedBasis) -> tuple[ValueStats, ValueStats]:
    return shard_stats(worker_featurizer(config), [Path(p) for p in paths], batch_size, basis)


def _merge_moments(a, b):
    (ma, sa), (mb, sb) = a, b
    merged = mb if ma is None else ma if mb is None else ma.merge(mb)
    return merged, sa + sb


def _merge_stats(a: tuple[ValueStats, ValueStats], b: tuple[ValueStats, ValueStats]) -> tuple[ValueStats, ValueStats]:
    return a[0].merge(b[0]), a[1].merge(b[1])


def _fit_on_dask(
    featurizer: Featurizer, items: Sequence[ImageLike], options: Options, batch_size: int, address: str
) -> tuple[FittedBasis, list[dict]]:
    config = task_config(featurizer, options, items, "fitting")
    parts = shards(items, batch_size)
    n = len(parts)

    def work(client) -> tuple[FittedBasis, tuple[ValueStats, ValueStats], list[dict]]:
        # (Client.map has a batch_size argument of its own: ours goes positionally.)
        moments, skipped = tree_reduce(client, client.map(_task_moments, [config] * n, parts, [batch_size] * n, pure=False), _merge_moments)
        basis = _basis(moments, options)
        stats = tree_reduce(client, client.map(_task_stats, [config] * n, parts, [batch_size] * n, [basis] * n, pure=False), _merge_stats)
        return basis, stats, skipped

    basis, stats, skipped = on_cluster(address, "fit", work)
    return _complete(basis, stats), as_given(skipped, items)
