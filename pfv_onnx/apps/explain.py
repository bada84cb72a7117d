"""``pfv-onnx explain``: PFV of image files and folders, batch by batch, written as pictures and a report.

A run keeps its progress in ``OUT/.pfv-run.json``: after each batch, what it wrote and which inputs it had
to skip. An interrupted run (Ctrl-C, a crash) leaves only whole files behind, and the same command run
again continues with the first unfinished batch. The state file goes once ``summary.json`` is written.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ImageError, PFVError
from ..files import atomic_path
from ..pipeline import PFV
from ..preprocess import expand_inputs
from ..progress import Progress
from ..report import build_summary, unique_names, write_batch, write_summary

# Without --batch, all inputs form one batch unless there are more than this; then they are split in order
# into the fewest batches of at most this many images, as equal in size as possible.
MAX_BATCH = 64
STATE_FILE = ".pfv-run.json"


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


def _start(out: Path, key: dict, overwrite: bool) -> dict:
    """The run's state: a fresh one, or that of an interrupted run of the same command to resume."""
    if out.exists() and not out.is_dir():
        raise PFVError(f"{out}: exists and is not a folder")
    state_path = out / STATE_FILE
    previous = None
    if state_path.is_file():
        try:
            previous = json.loads(state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
    if not overwrite:
        if (out / "summary.json").exists():
            raise PFVError(f"{out}: holds a report already (use --overwrite to replace it)")
        if previous is not None and previous.get("key") == key:
            return previous
        if previous is not None:
            raise PFVError(f"{out}: holds an unfinished run of other inputs or options (use --overwrite, or the same command)")
        if out.is_dir() and any(out.iterdir()):
            raise PFVError(f"{out}: is not empty (use --overwrite, or another folder)")
    return {"key": key, "batches": {}}


def _save_state(out: Path, state: dict) -> None:
    with atomic_path(out / STATE_FILE) as tmp:
        tmp.write_text(json.dumps(state), encoding="utf-8")


def explain(
    pfv: PFV,
    inputs: Sequence[str | Path],
    out: Path,
    batch: int | None = None,
    show_progress: bool = True,
    overwrite: bool = False,
) -> dict:
    """Run PFV over ``inputs`` (files and folders) and write everything to ``out``; return the summary.

    Inputs that cannot be decoded are skipped and listed in the summary (``skipped``) with the reason; the
    rest of their batch goes on. Raises :class:`PFVError` for usage errors (a missing input, a folder that
    holds other things) before anything is written.
    """
    paths = expand_inputs(inputs)
    names = unique_names([p.stem for p in paths])
    plan = split_batches(len(paths), batch)
    description = pfv.describe()
    description["options"]["batch"] = batch
    key = {"model": description["model"], "options": description["options"], "inputs": [str(p) for p in paths]}
    state = _start(out, key, overwrite)
    out.mkdir(parents=True, exist_ok=True)

    progress = Progress(len(paths), enabled=show_progress)
    started = time.perf_counter()
    try:
        for index, part in enumerate(plan):
            if str(index) not in state["batches"]:
                state["batches"][str(index)] = _run_batch(pfv, out, index, [paths[i] for i in part], [names[i] for i in part])
                _save_state(out, state)
            progress.update(len(part))
    finally:
        progress.close()

    done = [state["batches"][str(i)] for i in range(len(plan))]
    timings: dict[str, float] = defaultdict(float)
    for entry in done:
        for stage, seconds in entry["timings"].items():
            timings[stage] += seconds
    summary = build_summary(
        description,
        [entry["batch"] for entry in done if entry["batch"] is not None],
        [image for entry in done for image in entry["images"]],
        timings,
        skipped=[skip for entry in done for skip in entry["skipped"]],
        wall_s=round(time.perf_counter() - started, 3),
    )
    write_summary(out, summary)
    (out / STATE_FILE).unlink(missing_ok=True)
    return summary


def _run_batch(pfv: PFV, out: Path, index: int, paths: list[Path], names: list[str]) -> dict:
    """Decode, run and write one batch; inputs that cannot be read are skipped with their reason."""
    started = time.perf_counter()
    pixels, kept, skipped = [], [], []
    for path, name in zip(paths, names):
        try:
            pixels.append(pfv.prepare(path))
            kept.append((path, name))
        except ImageError as exc:
            skipped.append({"source": str(path), "reason": str(exc)})
    if not kept:
        return {"batch": None, "images": [], "skipped": skipped, "timings": {}}
    crops = np.stack(pixels)
    result = pfv.run(pfv.model_input(crops), crops, [name for _, name in kept], preprocess_s=time.perf_counter() - started)
    entry, images, written = write_batch(out, result, index, [str(path) for path, _ in kept])
    return {"batch": entry, "images": images, "skipped": skipped, "timings": {**result.timings, **written}}
