"""``pfv-onnx explain``: PFV of image files and folders, batch by batch, written as pictures and a report.

A run keeps its progress in ``OUT/.pfv-run.jsonl``: a line per finished batch, what it wrote and which
inputs it had to skip. An interrupted run (Ctrl-C, a crash) leaves only whole files behind, and the same
command run again continues with the first unfinished batch. The state file goes once ``summary.json`` is
written.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
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
from ..report import PICTURES, build_summary, unique_names, write_batch, write_summary
from ..runtime import single_threaded

# Without --batch, all inputs form one batch unless there are more than this; then they are split in order
# into the fewest batches of at most this many images, as equal in size as possible.
MAX_BATCH = 64
STATE_FILE = ".pfv-run.jsonl"
PREFETCH = 2  # batches decoded ahead of the one that runs
IN_FLIGHT = 2  # batches still being finished, drawn and written behind it
# Measured on 2 cores: 10 steps below the forward pass, the workers take the idle time it leaves (its
# single-threaded stretches) and a folder run is 5-10% faster than with the workers at equal priority.
WORKER_NICENESS = 10


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
    previous = _read_journal(out / STATE_FILE)
    if not overwrite:
        if (out / "summary.json").exists():
            raise PFVError(f"{out}: holds a report already (use --overwrite to replace it)")
        if previous is not None and previous.get("key") == key:
            _write_journal(out, previous)  # without a last line cut short, so that new lines follow whole ones
            return previous
        if previous is not None:
            raise PFVError(f"{out}: holds an unfinished run of other inputs or options (use --overwrite, or the same command)")
        if out.is_dir() and any(out.iterdir()):
            raise PFVError(f"{out}: is not empty (use --overwrite, or another folder)")
    out.mkdir(parents=True, exist_ok=True)
    state: dict = {"key": key, "batches": {}}
    _write_journal(out, state)
    return state


def _write_journal(out: Path, state: dict) -> None:
    lines = [json.dumps({"key": state["key"]})] + [json.dumps({"index": int(i), **entry}) for i, entry in state["batches"].items()]
    with atomic_path(out / STATE_FILE) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _read_journal(path: Path) -> dict | None:
    """The state kept in ``path``: the run's key on the first line, then one line per finished batch (so a
    run of many batches appends a line each instead of rewriting all of them). A last line cut short by a
    crash is ignored: that batch is done again."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        state = {"key": json.loads(lines[0])["key"], "batches": {}}
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        return None
    for line in lines[1:]:
        try:
            entry = json.loads(line)
            state["batches"][str(entry.pop("index"))] = entry
        except (ValueError, KeyError, AttributeError, TypeError):
            break
    return state


def _record_batch(out: Path, index: int, entry: dict) -> None:
    with open(out / STATE_FILE, "a", encoding="utf-8") as journal:
        journal.write(json.dumps({"index": index, **entry}) + "\n")


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
    :data:`PREFETCH` batches, and finish (decomposition, weighting), draw and write the last
    :data:`IN_FLIGHT` ones, while the current batch goes forward; so memory stays flat however many images
    there are, and the forward passes follow each other with the rest of the work around them. The worker
    threads run at a lower priority than the forward pass, so that they fill the cores it leaves idle
    instead of slowing it down.
    """
    paths = expand_inputs(inputs)
    names = unique_names([p.stem for p in paths])
    plan = split_batches(len(paths), batch)
    description = pfv.describe()
    description["options"]["batch"] = batch
    description["options"]["pictures"] = list(pictures)
    key = {field: description[field] for field in ("model", "options", "taps", "final", "basis")}
    key["inputs"] = [str(p) for p in paths]
    state = _start(out, key, overwrite)  # before any picture: a run stopped from here on can be resumed

    progress = Progress(len(paths), enabled=show_progress)
    started = time.perf_counter()
    todo = [i for i in range(len(plan)) if str(i) not in state["batches"]]
    progress.update(len(paths) - sum(len(plan[i]) for i in todo))
    pool = ThreadPoolExecutor(max_workers=workers or max(2, os.cpu_count() or 1), thread_name_prefix="pfv-io", initializer=_lower_priority)
    decoding: dict[int, list[Future]] = {}
    writing: deque[tuple[int, Future | None, list[dict], dict[str, float]]] = deque()

    def decode_ahead(k: int) -> None:
        if k < len(todo):
            decoding[todo[k]] = [pool.submit(_decode, pfv, paths[i]) for i in plan[todo[k]]]

    def finish(index: int, job: Future | None, skipped: list[dict], timings: dict[str, float]) -> None:
        written = None
        if job is not None:
            timings, written = job.result()
            timings = {**timings, **written.wait()}
        entry = {"batch": written.batch if written else None, "images": written.images if written else [], "skipped": skipped, "timings": timings}
        state["batches"][str(index)] = entry
        _record_batch(out, index, entry)
        progress.update(len(plan[index]))

    def visualise_and_write(index: int, features, crops: np.ndarray, kept: list[int], timings: dict[str, float]):
        result = pfv.result(features, crops, [names[i] for i in kept], timings)
        return dict(result.timings), write_batch(out, result, index, [str(paths[i]) for i in kept], pool, pictures)

    with single_threaded():  # held around the whole run: its batches are visualised in several threads at once
        try:
            for k in range(PREFETCH):
                decode_ahead(k)
            for k, index in enumerate(todo):
                decode_ahead(k + PREFETCH)
                crops, inputs, kept, skipped, seconds = [], [], [], [], 0.0
                for i, job in zip(plan[index], decoding.pop(index)):
                    crop, model_input, reason, spent = job.result()
                    seconds += spent
                    if crop is None:
                        skipped.append({"source": str(paths[i]), "reason": reason})
                    else:
                        crops.append(crop)
                        inputs.append(model_input)
                        kept.append(i)
                timings = {"preprocess": seconds}
                written = None
                if kept:
                    forward_started = time.perf_counter()
                    features = pfv.forward(np.concatenate(inputs))
                    timings["forward"] = time.perf_counter() - forward_started
                    written = pool.submit(visualise_and_write, index, features, np.stack(crops), kept, timings)
                writing.append((index, written, skipped, timings))
                while len(writing) > IN_FLIGHT:
                    finish(*writing.popleft())
            while writing:
                finish(*writing.popleft())
        except BaseException:
            # Interrupted: the files being written are finished whole, the rest cancelled; the batches written
            # completely are recorded, so that a resume does not redo them.
            pool.shutdown(wait=True, cancel_futures=True)
            for index, job, skipped, timings in writing:
                if job is None or _written_whole(job):
                    finish(index, job, skipped, timings)
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


def _written_whole(job: Future) -> bool:
    """Whether a batch's job ran and every file it started was written."""
    if not job.done() or job.cancelled() or job.exception() is not None:
        return False
    return job.result()[1].complete()


def _lower_priority() -> None:
    """Run this worker thread at a lower priority than the thread that started it, so the forward pass
    keeps its cores. Only on Linux, which gives each thread its own nice value (elsewhere the call would
    renice the whole process)."""
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + WORKER_NICENESS)
    except OSError:
        pass


def _decode(pfv: PFV, path: Path) -> tuple[np.ndarray | None, np.ndarray | None, str | None, float]:
    """One input decoded, resized and normalised in a worker thread: the crop and the ``(1, ...)`` model
    input, or ``None`` and the reason."""
    started = time.perf_counter()
    try:
        crop = pfv.prepare(path)
        return crop, pfv.model_input(crop[None]), None, time.perf_counter() - started
    except ImageError as exc:
        return None, None, str(exc), time.perf_counter() - started
