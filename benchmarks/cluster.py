"""Dataset-sized work in process and on a local Dask cluster of two worker processes: images per second of
the atlas's scan (with a basis fitted beforehand) and of evaluate's batches (the curves included), the
cluster's start and the workers' model loading counted in, as a user meets them.

``python -m benchmarks --dask`` adds this table; each run must be the main module's (Dask's workers start
by importing it).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pfv_onnx import PFV, evaluate
from pfv_onnx.images import bundled

HEADER = (
    "| work | images | in process (images/s) | local cluster, 2 workers (images/s) | cluster / in process |\n"
    "|---|---|---|---|---|"
)
# evaluate's batches: fewer composites and steps than its defaults, so that a run takes seconds.
COMPOSITES, STEPS, BATCH = 24, 5, 8


def _timed(run: Callable[[str | None], int], dask: str | None) -> tuple[int, float]:
    """The images ``run`` went through, and how many a second."""
    started = time.perf_counter()
    images = run(dask)
    return images, images / (time.perf_counter() - started)


def measure(repeats: int = 2) -> list[dict]:
    """The atlas's scan over the 80 shipped dataset photos, and evaluate on :data:`COMPOSITES` composites,
    each in process and on the local cluster, alternately, ``repeats`` times; medians."""
    data = bundled.sample_images()[0].parent / "gcompris5"
    model = str(bundled.model_path())
    with tempfile.TemporaryDirectory() as work:
        basis = PFV().fit([data], progress=lambda *_: None).save_basis(Path(work) / "basis.npz")

        def scan(dask: str | None) -> int:
            return PFV(basis=basis).atlas(data, batch_size=BATCH, dask=dask, progress=lambda *_: None).summary["data"]["images"]

        def scores(dask: str | None) -> int:
            found = evaluate(model, count=COMPOSITES, steps=STEPS, batch=BATCH, dask=dask, progress=lambda *_: None)
            return found.summary["images"]

        rows = []
        for name, run in ((f"atlas scan, batches of {BATCH}", scan), (f"evaluate, {STEPS} steps, batches of {BATCH}", scores)):
            rates: dict[str | None, list[float]] = {None: [], "local": []}
            for dask in (None, "local") * repeats:
                images, rate = _timed(run, dask)
                rates[dask].append(rate)
            rows.append({"work": name, "images": images, "in_process": statistics.median(rates[None]), "cluster": statistics.median(rates["local"])})
    return rows


def row(r: dict) -> str:
    return f"| {r['work']} | {r['images']} | {r['in_process']:.1f} | {r['cluster']:.1f} | {r['cluster'] / r['in_process']:.2f} |"
