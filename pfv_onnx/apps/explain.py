"""``pfv-onnx explain``: PFV of image files and folders, batch by batch, written as pictures and a report.

A run keeps its progress in ``OUT/.pfv-run.json``: after each batch, what it wrote and which inputs it had
to skip. An interrupted run (Ctrl-C, a crash) leaves only whole files behind, and the same command run
again continues with the first unfinished batch. The state file goes once ``summary.json`` is written.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import ImageError, PFVError
from ..files import atomic_path
from ..pipeline import PFV
from ..preprocess import expand_inputs
from ..progress import Progress
from ..report import PICTURES, BatchWrite, build_summary, unique_names, write_batch, write_summary

# Without --batch, all inputs form one batch unless there are more than this; then they are split in order
# into the fewest batches of at most this many images, as equal in size as possible.
MAX_BATCH = 64
STATE_FILE = ".pfv-run.json"
PREFETCH = 2  # batches decoded ahead of the one that runs
IN_FLIGHT = 2  # batches still being drawn and written behind it


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
    workers: int | None = None,
    pictures: Sequence[str] = PICTURES,
) -> dict:
    """Run PFV over ``inputs`` (files and folders) and write everything to ``out``; return the summary.

    Inputs that cannot be decoded are skipped and listed in the summary (``skipped``) with the reason; the
    rest of their batch goes on. Raises :class:`PFVError` for usage errors (a missing input, a folder that
    holds other things) before anything is written.

    The work streams: ``workers`` threads (default one per core, at least two) decode the next
    :data:`PREFETCH` batches, and draw and write the last :data:`IN_FLIGHT` ones, while the current batch
    runs; so memory stays flat however many images there are, and decoding and PNG encoding overlap the
    forward pass.
    """
    paths = expand_inputs(inputs)
    names = unique_names([p.stem for p in paths])
    plan = split_batches(len(paths), batch)
    description = pfv.describe()
    description["options"]["batch"] = batch
    description["options"]["pictures"] = list(pictures)
    key = {field: description[field] for field in ("model", "options", "taps", "final", "basis")}
    key["inputs"] = [str(p) for p in paths]
    state = _start(out, key, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    _save_state(out, state)  # before any picture: a run stopped from here on can be resumed

    progress = Progress(len(paths), enabled=show_progress)
    started = time.perf_counter()
    todo = [i for i in range(len(plan)) if str(i) not in state["batches"]]
    progress.update(len(paths) - sum(len(plan[i]) for i in todo))
    pool = ThreadPoolExecutor(max_workers=workers or max(2, os.cpu_count() or 1), thread_name_prefix="pfv-io")
    decoding: dict[int, list[Future]] = {}
    writing: deque[tuple[int, BatchWrite | None, list[dict], dict[str, float]]] = deque()

    def decode_ahead(k: int) -> None:
        if k < len(todo):
            decoding[todo[k]] = [pool.submit(_decode, pfv, paths[i]) for i in plan[todo[k]]]

    def finish(index: int, written: BatchWrite | None, skipped: list[dict], timings: dict[str, float]) -> None:
        if written is not None:
            timings = {**timings, **written.wait()}
        state["batches"][str(index)] = {
            "batch": written.batch if written else None,
            "images": written.images if written else [],
            "skipped": skipped,
            "timings": timings,
        }
        _save_state(out, state)
        progress.update(len(plan[index]))

    try:
        for k in range(PREFETCH):
            decode_ahead(k)
        for k, index in enumerate(todo):
            decode_ahead(k + PREFETCH)
            crops, kept, skipped, seconds = [], [], [], 0.0
            for i, job in zip(plan[index], decoding.pop(index)):
                crop, reason, spent = job.result()
                seconds += spent
                if crop is None:
                    skipped.append({"source": str(paths[i]), "reason": reason})
                else:
                    crops.append(crop)
                    kept.append(i)
            written, timings = None, {"preprocess": seconds}
            if kept:
                batch = np.stack(crops)
                result = pfv.run(pfv.model_input(batch), batch, [names[i] for i in kept], preprocess_s=seconds)
                timings = dict(result.timings)
                written = write_batch(out, result, index, [str(paths[i]) for i in kept], pool, pictures)
            writing.append((index, written, skipped, timings))
            while len(writing) > IN_FLIGHT:
                finish(*writing.popleft())
        while writing:
            finish(*writing.popleft())
    except BaseException:
        # Interrupted: the files being written are finished whole, the rest cancelled; the batches written
        # completely are recorded, so that a resume does not redo them.
        pool.shutdown(wait=True, cancel_futures=True)
        for index, written, skipped, timings in writing:
            if written is None or written.complete():
                finish(index, written, skipped, timings)
        raise
    finally:
        pool.shutdown(wait=True)
        progress.close()

    done = [state["batches"][str(i)] for i in range(len(plan))]
    timings_total: dict[str, float] = defaultdict(float)
    for entry in done:
        for stage, seconds in entry["timings"].items():
            timings_total[stage] += seconds
    summary = build_summary(
        description,
        [entry["batch"] for entry in done if entry["batch"] is not None],
        [image for entry in done for image in entry["images"]],
        timings_total,
        skipped=[skip for entry in done for skip in entry["skipped"]],
        wall_s=round(time.perf_counter() - started, 3),
    )
    write_summary(out, summary)
    (out / STATE_FILE).unlink(missing_ok=True)
    return summary


def _decode(pfv: PFV, path: Path) -> tuple[np.ndarray | None, str | None, float]:
    """One input decoded and resized in a worker thread: the crop, or ``None`` and the reason."""
    started = time.perf_counter()
    try:
        return pfv.prepare(path), None, time.perf_counter() - started
    except ImageError as exc:
        return None, str(exc), time.perf_counter() - started
