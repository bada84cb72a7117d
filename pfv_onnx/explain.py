"""``pfv-onnx explain``: PFV of image files and folders, batch by batch, written as pictures and a report."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from .pipeline import PFV
from .preprocess import expand_inputs
from .progress import Progress
from .report import build_summary, unique_names, write_batch, write_summary

# Without --batch, all inputs form one batch unless there are more than this; then they are split in order
# into the fewest batches of at most this many images, as equal in size as possible.
MAX_BATCH = 64


def split_batches(count: int, batch: int | None = None) -> list[range]:
    """Consecutive index ranges: ``batch`` images each (the last may be smaller), or by :data:`MAX_BATCH`."""
    if count <= 0:
        return []
    if batch is not None:
        if batch < 1:
            raise ValueError("batch must be at least 1")
        return [range(start, min(start + batch, count)) for start in range(0, count, batch)]
    parts = math.ceil(count / MAX_BATCH)
    bounds = [round(i * count / parts) for i in range(parts + 1)]
    return [range(bounds[i], bounds[i + 1]) for i in range(parts)]


def explain(
    pfv: PFV,
    inputs: Sequence[str | Path],
    out: Path,
    batch: int | None = None,
    show_progress: bool = True,
) -> dict:
    """Run PFV over ``inputs`` (files and folders) and write everything to ``out``; return the summary."""
    paths = expand_inputs(inputs)
    names = unique_names([p.stem for p in paths])
    batches = split_batches(len(paths), batch)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = defaultdict(float)
    batch_entries, image_entries = [], []
    progress = Progress(len(paths), enabled=show_progress)
    started = time.perf_counter()
    try:
        for index, part in enumerate(batches):
            result = pfv([paths[i] for i in part])
            result.names = [names[i] for i in part]
            for stage, seconds in result.timings.items():
                timings[stage] += seconds
            entry, entries, written = write_batch(out, result, index, [str(paths[i]) for i in part])
            for stage, seconds in written.items():
                timings[stage] += seconds
            batch_entries.append(entry)
            image_entries += entries
            progress.update(len(part))
    finally:
        progress.close()
    description = pfv.describe()
    description["options"]["batch"] = batch
    wall = round(time.perf_counter() - started, 3)
    summary = build_summary(description, batch_entries, image_entries, timings, wall_s=wall)
    write_summary(out, summary)
    return summary
