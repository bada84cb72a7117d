"""``PFV.fit`` and ``pfv-onnx fit``: a basis fitted on any number of images, in process or on Dask.

Two passes over the data (see :mod:`pfv_onnx.core.fitted`): moments of ``F_N`` to fix the components,
then the statistics of the weighted components to fix the normalisation. The data is read in shards of a
few batches; each shard's partial result is small (a ``C x C`` matrix, a few numbers) and partial results
merge in a tree. On Dask (the optional ``[dask]`` extra) each task opens the model itself, reads its shard
of files (the workers must see the same paths) and returns its partial result; a task lost with its worker
is run again by Dask, and a fit whose task keeps failing stops with a clear error, never with a wrong basis.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .core import FeatureMoments, FittedBasis, ValueStats, feature_matrix, layer_sources, weighted_stats
from .errors import ImageError, PFVError
from .preprocess import expand_inputs

if TYPE_CHECKING:
    from .pipeline import PFV

SHARD_BATCHES = 4  # batches per Dask task


def _batches(pfv: PFV, paths: Sequence[Path], batch_size: int):
    """Yield ``(features, paths kept)`` per batch; collect the inputs that cannot be read in ``skipped``."""
    skipped: list[dict] = []

    def generate():
        for start in range(0, len(paths), batch_size):
            pixels, kept = [], []
            for path in paths[start : start + batch_size]:
                try:
                    pixels.append(pfv.prepare(path))
                    kept.append(path)
                except ImageError as exc:
                    skipped.append({"source": str(path), "reason": str(exc)})
            if pixels:
                yield pfv.forward(pfv.model_input(np.stack(pixels)), maps=True), kept

    return generate(), skipped


def shard_moments(pfv: PFV, paths: Sequence[Path], batch_size: int) -> tuple[FeatureMoments | None, list[dict]]:
    """Pass 1 over ``paths``: the merged :class:`FeatureMoments` of their batches, and the skipped inputs."""
    batches, skipped = _batches(pfv, paths, batch_size)
    total = None
    for features, kept in batches:
        part = FeatureMoments.of(feature_matrix(features.final), layer_sources(features.final, features.maps), len(kept))
        total = part if total is None else total.merge(part)
    return total, skipped


def shard_stats(pfv: PFV, paths: Sequence[Path], batch_size: int, basis: FittedBasis) -> tuple[ValueStats, ValueStats]:
    """Pass 2 over ``paths``: the statistics of their weighted components under ``basis`` and of their
    activation maps."""
    batches, _ = _batches(pfv, paths, batch_size)
    weighted, activation = ValueStats(), ValueStats()
    for features, _ in batches:
        w, a = weighted_stats(features.final, features.maps, pfv.size, basis)
        weighted, activation = weighted.merge(w), activation.merge(a)
    return weighted, activation


def fit(pfv: PFV, inputs: Sequence[str | Path], batch_size: int = 32, dask: str | None = None) -> tuple[FittedBasis, list[dict]]:
    """Fit a basis on every image of ``inputs`` (files and folders); returns it and the skipped inputs.

    Args:
        batch_size: images per forward pass (any size gives the same basis).
        dask: ``None`` to fit in this process, ``"local"`` for a local Dask cluster, or a scheduler address.
    """
    paths = expand_inputs(inputs)
    if batch_size < 1:
        raise PFVError(f"batch size must be at least 1, got {batch_size}")
    if dask is not None:
        return _fit_on_dask(pfv, paths, batch_size, dask)
    try:
        moments, skipped = shard_moments(pfv, paths, batch_size)
        if moments is None:
            raise PFVError("no image could be read to fit a basis")
        basis = _basis(moments, pfv)
        return basis.with_statistics(*shard_stats(pfv, paths, batch_size, basis)), skipped
    except ValueError as exc:  # NaN or infinite features
        raise PFVError(f"cannot fit the basis: {exc}") from None


# ---- Dask -------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _worker_pfv(config: str) -> PFV:
    """The PFV of a task's worker process, opened once per configuration (which holds the model file's
    SHA-256, so a replaced file is opened afresh) and reused by later tasks."""
    from .pipeline import PFV

    options = json.loads(config)
    expected = options.pop("model_sha256")
    pfv = PFV(**options)
    if pfv.model_sha256 != expected:
        raise PFVError(f"{options['model']}: not the same file on this worker as where the fit started")
    return pfv


def _task_moments(config: str, paths: list[str], batch_size: int):
    return shard_moments(_worker_pfv(config), [Path(p) for p in paths], batch_size)


def _task_stats(config: str, paths: list[str], batch_size: int, basis: FittedBasis) -> tuple[ValueStats, ValueStats]:
    return shard_stats(_worker_pfv(config), [Path(p) for p in paths], batch_size, basis)


def _merge_moments(a, b):
    (ma, sa), (mb, sb) = a, b
    merged = mb if ma is None else ma if mb is None else ma.merge(mb)
    return merged, sa + sb


def _merge_stats(a: tuple[ValueStats, ValueStats], b: tuple[ValueStats, ValueStats]) -> tuple[ValueStats, ValueStats]:
    return a[0].merge(b[0]), a[1].merge(b[1])


def _basis(moments: FeatureMoments, pfv: PFV) -> FittedBasis:
    try:
        return moments.basis(pfv.n_components, pfv.hierarchical, pfv.n_sigma)
    except ValueError as exc:  # more components than channels
        raise PFVError(f"cannot fit the basis: {exc}") from None


def _tree_reduce(client: Any, futures: list, merge: Callable) -> Any:
    """Merge the results of ``futures`` pairwise on the cluster, level by level, and fetch the last one."""
    while len(futures) > 1:
        futures = [client.submit(merge, futures[i], futures[i + 1]) if i + 1 < len(futures) else futures[i] for i in range(0, len(futures), 2)]
    return futures[0].result()


def _fit_on_dask(pfv: PFV, paths: list[Path], batch_size: int, address: str) -> tuple[FittedBasis, list[dict]]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise PFVError("fitting on Dask needs the dask extra: pip install 'pfv-onnx[dask]'") from None
    config = json.dumps({**pfv.config(), "providers": None, "model_sha256": pfv.model_sha256})
    shard = batch_size * SHARD_BATCHES
    # Absolute paths: the workers need not share this process's working folder.
    shards = [[str(p.resolve()) for p in paths[i : i + shard]] for i in range(0, len(paths), shard)]
    if not shards:
        raise PFVError("no images to fit a basis on")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) if address == "local" else None
    try:
        with Client(cluster if cluster is not None else address) as client:
            n = len(shards)
            # (Client.map has a batch_size argument of its own: ours goes positionally.)
            moments, skipped = _tree_reduce(client, client.map(_task_moments, [config] * n, shards, [batch_size] * n, pure=False), _merge_moments)
            if moments is None:
                raise PFVError("no image could be read to fit a basis")
            basis = _basis(moments, pfv)
            stats = _tree_reduce(client, client.map(_task_stats, [config] * n, shards, [batch_size] * n, [basis] * n, pure=False), _merge_stats)
    except PFVError:
        raise
    except Exception as exc:  # KilledWorker, connection failures, a task's own error
        raise PFVError(f"the Dask fit failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    finally:
        if cluster is not None:
            cluster.close()
    return basis.with_statistics(*stats), skipped
