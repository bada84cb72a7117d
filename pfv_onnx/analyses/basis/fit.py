"""Fitting a basis on any number of images, in process or on Dask (``PFV.fit`` and ``pfv-onnx fit``).

Two passes over the data (see :mod:`pfv_onnx.core.fitted`): moments of ``F_N`` to fix the components,
then the statistics of the weighted components to fix the normalisation. Each pass streams the images
(:mod:`pfv_onnx.runtime.stream`); each batch's partial result is small (a ``C x C`` matrix, a few numbers) and
partial results merge in any order. On Dask (the optional ``[dask]`` extra) the images are read in shards
of a few batches: each task opens the model itself, reads its shard of files (the workers must see the
same paths) and returns its partial result, and the results merge in a tree. A task lost with its worker
is run again by Dask, and a fit whose task keeps failing stops with a clear error, never with a wrong
basis.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...core import BlankResponse, FeatureMoments, FittedBasis, ValueStats, feature_matrix, weighted_stats, weighting_sources
from ...errors import PFVError
from ...runtime.features import Features
from ...runtime.featurizer import Featurizer, ImageLike
from ...options import Options
from ...runtime.stream import BatchStream, Decoded, plan_batches

SHARD_BATCHES = 4  # batches per Dask task
# Seconds to wait for a Dask scheduler to answer: an address that accepts connections and never answers is
# refused after this, not waited on for ever.
DASK_CONNECT_TIMEOUT_S = 20


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


@functools.lru_cache(maxsize=4)
def _worker_featurizer(config: str) -> Featurizer:
    """The featurizer of a task's worker process, opened once per configuration (which holds the model
    file's SHA-256, so a replaced file is opened afresh) and reused by later tasks."""
    data = json.loads(config)
    featurizer = Featurizer(data["model"], Options.from_dict(data["options"]))
    if featurizer.model_sha256 != data["model_sha256"]:
        raise PFVError(f"{data['model']}: not the same file on this worker as where the fit started")
    return featurizer


def _task_moments(config: str, paths: list[str], batch_size: int):
    return shard_moments(_worker_featurizer(config), [Path(p) for p in paths], batch_size)


def _task_stats(config: str, paths: list[str], batch_size: int, basis: FittedBasis) -> tuple[ValueStats, ValueStats]:
    return shard_stats(_worker_featurizer(config), [Path(p) for p in paths], batch_size, basis)


def _merge_moments(a, b):
    (ma, sa), (mb, sb) = a, b
    merged = mb if ma is None else ma if mb is None else ma.merge(mb)
    return merged, sa + sb


def _merge_stats(a: tuple[ValueStats, ValueStats], b: tuple[ValueStats, ValueStats]) -> tuple[ValueStats, ValueStats]:
    return a[0].merge(b[0]), a[1].merge(b[1])


def _tree_reduce(client: Any, futures: list, merge: Callable) -> Any:
    """Merge the results of ``futures`` pairwise on the cluster, level by level, and fetch the last one."""
    while len(futures) > 1:
        futures = [client.submit(merge, futures[i], futures[i + 1]) if i + 1 < len(futures) else futures[i] for i in range(0, len(futures), 2)]
    return futures[0].result()


def cluster_client(client_class: Any, address: Any) -> Any:
    """A Dask client of the scheduler at ``address``, or one line after :data:`DASK_CONNECT_TIMEOUT_S`
    seconds. (Dask's own connection timeout does not cover a peer that accepts the connection and never
    answers: the client is made in a thread of its own, which is left behind if it hangs.)"""
    made: dict[str, Any] = {}
    lock, given_up = threading.Lock(), threading.Event()

    def connect() -> None:
        try:
            client = client_class(address, timeout=DASK_CONNECT_TIMEOUT_S, set_as_default=False)
        except BaseException as exc:  # raised in the calling thread
            made["error"] = exc
            return
        with lock:
            if given_up.is_set():  # it answered after all, too late: not left open
                client.close()
            else:
                made["client"] = client

    thread = threading.Thread(target=connect, name="pfv-dask-connect", daemon=True)
    thread.start()
    thread.join(DASK_CONNECT_TIMEOUT_S + 5)
    with lock:
        if thread.is_alive() and "client" not in made:
            given_up.set()
            raise PFVError(f"the Dask scheduler at {address} did not answer within {DASK_CONNECT_TIMEOUT_S} s")
    if "error" in made:
        raise made["error"]
    return made["client"]


def _fit_on_dask(
    featurizer: Featurizer, items: Sequence[ImageLike], options: Options, batch_size: int, address: str
) -> tuple[FittedBasis, list[dict]]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise PFVError("fitting on Dask needs the dask extra: pip install 'pfv-onnx[dask]'") from None
    if featurizer.model_path is None:
        raise PFVError("a model given in memory cannot be fitted on Dask; give a model file")
    if not all(isinstance(item, (str, Path)) for item in items):
        raise PFVError("fitting on Dask reads image files: give paths and folders, not images in memory")
    # Each worker opens the model itself, on its own default providers, without the classifier head.
    worker_options = options.replace(providers=None, keep_logits=False).view()
    config = json.dumps({"model": str(Path(featurizer.model_path).resolve()), "options": worker_options, "model_sha256": featurizer.model_sha256})
    shard = batch_size * SHARD_BATCHES
    # Absolute paths: the workers need not share this process's working folder.
    shards = [[str(Path(p).resolve()) for p in items[i : i + shard]] for i in range(0, len(items), shard)]
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) if address == "local" else None
    try:
        with cluster_client(Client, cluster if cluster is not None else address) as client:
            n = len(shards)
            # (Client.map has a batch_size argument of its own: ours goes positionally.)
            moments, skipped = _tree_reduce(client, client.map(_task_moments, [config] * n, shards, [batch_size] * n, pure=False), _merge_moments)
            basis = _basis(moments, options)
            stats = _tree_reduce(client, client.map(_task_stats, [config] * n, shards, [batch_size] * n, [basis] * n, pure=False), _merge_stats)
    except PFVError:
        raise
    except Exception as exc:  # KilledWorker, connection failures, a task's own error
        raise PFVError(f"the Dask fit failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    finally:
        if cluster is not None:
            cluster.close()
    return _complete(basis, stats), skipped
