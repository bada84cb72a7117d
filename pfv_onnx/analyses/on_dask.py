"""Dataset-sized work on Dask (the optional ``[dask]`` extra): the basis's fit, the atlas's scan, the
evaluation's batches.

The image files are cut into shards of a few batches; each task opens the model itself (once per worker
process and configuration), reads its shard (the workers must see the same paths), and returns a small
partial result; the results merge pairwise in a tree, in any order, to what the same work gives in process.
(evaluate's images are made in memory, so each of its tasks is one batch with its images sent along.)
A task lost with its worker is run again by Dask; work whose task keeps failing stops with one line, never
with a wrong result.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import PFVError
from ..options import Options
from ..runtime.featurizer import Featurizer, ImageLike

SHARD_BATCHES = 4  # batches per Dask task
# Seconds to wait for a Dask scheduler to answer: an address that accepts connections and never answers is
# refused after this, not waited on for ever.
DASK_CONNECT_TIMEOUT_S = 20

Result = TypeVar("Result")


@functools.lru_cache(maxsize=4)
def worker_featurizer(config: str) -> Featurizer:
    """The featurizer of a task's worker process, opened once per configuration (which holds the model
    file's SHA-256, so a replaced file is opened afresh) and reused by later tasks."""
    data = json.loads(config)
    featurizer = Featurizer(data["model"], Options.from_dict(data["options"]))
    if featurizer.model_sha256 != data["model_sha256"]:
        raise PFVError(f"{data['model']}: not the same file on this worker as where the work started")
    return featurizer


def task_config(featurizer: Featurizer, options: Options, items: Sequence[ImageLike], what: str, keep_logits: bool = False) -> str:
    """What a task needs to open the same model with the same options, as text; refuses (one line) what a
    cluster cannot run: a model given in memory, images given in memory. The workers open the model on their
    own default providers, with the classifier head only where ``keep_logits`` asks for it."""
    if featurizer.model_path is None:
        raise PFVError(f"a model given in memory cannot be used for {what} on Dask; give a model file")
    if not all(isinstance(item, (str, Path)) for item in items):
        raise PFVError(f"{what} on Dask reads image files: give paths and folders, not images in memory")
    worker_options = options.replace(providers=None, keep_logits=keep_logits).view()
    return json.dumps({"model": str(Path(featurizer.model_path).resolve()), "options": worker_options, "model_sha256": featurizer.model_sha256})


def shards(items: Sequence[str | Path], batch_size: int) -> list[list[str]]:
    """``items`` in shards of :data:`SHARD_BATCHES` batches, as absolute paths (the workers need not share
    this process's working folder)."""
    shard = batch_size * SHARD_BATCHES
    return [[str(Path(p).resolve()) for p in items[i : i + shard]] for i in range(0, len(items), shard)]


def as_given(skipped: list[dict], items: Sequence[str | Path]) -> list[dict]:
    """The records of the files tasks could not read (they read resolved paths), each naming its file as the
    caller gave it, as the same work in process names it."""
    given = {str(Path(p).resolve()): str(p) for p in items}
    return [{"source": given.get(s["source"], s["source"]), "reason": s["reason"].replace(s["source"], given.get(s["source"], s["source"]))} for s in skipped]


def tree_reduce(client: Any, futures: list, merge: Callable) -> Any:
    """Merge the results of ``futures`` pairwise on the cluster, level by level, and fetch the last one."""
    while len(futures) > 1:
        futures = [client.submit(merge, futures[i], futures[i + 1]) if i + 1 < len(futures) else futures[i] for i in range(0, len(futures), 2)]
    return futures[0].result()


def on_cluster(address: str, what: str, work: Callable[[Any], Result]) -> Result:
    """``work(client)`` on a local two-worker cluster (``address`` ``"local"``) or the scheduler at ``address``;
    a failure of the cluster or of a task is one line naming ``what``."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise PFVError(f"{what} on Dask needs the dask extra: pip install 'pfv-onnx[dask]'") from None
    cluster = None
    try:
        if address == "local":
            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        with cluster_client(Client, cluster if cluster is not None else address) as client:
            return work(client)
    except PFVError:
        raise
    except Exception as exc:  # a cluster that does not start, KilledWorker, connection failures, a task's own error
        raise PFVError(f"the Dask {what} failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    finally:
        if cluster is not None:
            cluster.close()


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
