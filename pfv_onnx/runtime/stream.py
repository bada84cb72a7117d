"""The batch stream: images decoded ahead of the forward pass and each batch finished behind it.

The forward passes run back to back in the calling thread. Worker threads decode the next
:data:`PREFETCH` batches, and finish (colour, draw, write, or add up statistics) the last :data:`IN_FLIGHT`
ones meanwhile, at a lower priority than the forward pass, so they fill the cores it leaves idle instead
of slowing it down. Memory stays flat however many images there are. ``explain``, ``fit`` and the
applications share it.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from ..errors import ImageError
from .features import Features
from .featurizer import Featurizer, ImageLike
from ..util.threads import single_threaded, worker_count

PREFETCH = 2  # batches decoded ahead of the one that runs
IN_FLIGHT = 2  # batches still being finished behind it
# Measured on 2 cores: 10 steps below the forward pass, the workers take the idle time it leaves (its
# single-threaded stretches) and a folder run is 5-10% faster than with the workers at equal priority.
WORKER_NICENESS = 10
# Without a batch size, all images form one batch unless there are more than this; then they are split in
# order into the fewest batches of at most this many images, as equal in size as possible.
MAX_BATCH = 64

T = TypeVar("T")


@dataclass
class Decoded:
    """One batch of the stream, decoded.

    Attributes:
        index: the batch's index in the run's plan.
        positions: the positions (in the stream's items) of the images that decoded, in order.
        inputs: ``(n, ...)`` model input, ``None`` when no image of the batch could be read.
        crops: ``(n, H0, W0, 3)`` uint8 crops, ``None`` for preprocessed items (or none read).
        skipped: ``{"source", "reason"}`` of each item that could not be read.
        timings: seconds spent: ``preprocess`` (decoding, summed over the workers) and ``forward``.
    """

    index: int
    positions: list[int]
    inputs: np.ndarray | None
    crops: np.ndarray | None
    skipped: list[dict]
    timings: dict[str, float] = field(default_factory=dict)


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


def plan_batches(count: int, batch: int | None = None) -> list[tuple[int, range]]:
    """``(index, positions)`` of each batch of :func:`split_batches`, as :class:`BatchStream` takes them."""
    return list(enumerate(split_batches(count, batch)))


class BatchStream:
    """The images ``items`` in the given batches, through ``featurizer`` (see the module docstring).

    Args:
        batches: ``(index, positions)`` per batch, in the order to run them.
        maps, relative: as :meth:`Featurizer.forward` takes them.
        workers: worker threads (default one per core, at least two).
    """

    def __init__(
        self,
        featurizer: Featurizer,
        items: Sequence[ImageLike],
        batches: Sequence[tuple[int, Sequence[int]]],
        maps: bool = False,
        workers: int | None = None,
        relative: bool = False,
    ):
        self.featurizer = featurizer
        self.items = items
        self.batches = list(batches)
        # Each batch in flight is decoded, run and finished: PREFETCH + IN_FLIGHT + 1 of them at once.
        featurizer.check_batch(max((len(p) for _, p in self.batches), default=0) * (PREFETCH + IN_FLIGHT + 1))
        self.maps = maps
        self.relative = relative
        self.pool = ThreadPoolExecutor(max_workers=workers or max(2, worker_count()), thread_name_prefix="pfv-io", initializer=_lower_priority)
        # Threads for the NumPy core of each batch finished behind: the cores shared by the batches in flight.
        self.core_threads = max(2, worker_count() // IN_FLIGHT)

    def run(
        self,
        finish: Callable[[Decoded, Features], T],
        done: Callable[[Decoded, T | None], None],
        whole: Callable[[T], bool] = lambda outcome: True,
    ) -> None:
        """Run every batch: ``finish(decoded, features)`` in a worker thread (it may submit more work to
        :attr:`pool`), then ``done(decoded, outcome)`` in this thread, in order (``outcome`` ``None`` when
        no image of the batch could be read). The NumPy core runs single-threaded meanwhile.

        When interrupted (Ctrl-C, an error), work not yet started is cancelled, work under way is finished,
        ``done`` is called for the batches whose outcome is ``whole``, and the exception is raised again.
        """
        decoding: dict[int, list[Future]] = {}
        behind: deque[tuple[Decoded, Future | None]] = deque()

        def decode_ahead(k: int) -> None:
            if k < len(self.batches):
                decoding[k] = [self.pool.submit(self._decode, self.items[p]) for p in self.batches[k][1]]

        with single_threaded():  # held around the whole run: its batches are finished in several threads at once
            try:
                for k in range(PREFETCH):
                    decode_ahead(k)
                for k, (index, positions) in enumerate(self.batches):
                    decode_ahead(k + PREFETCH)
                    decoded = self._collect(index, positions, decoding.pop(k))
                    behind.append((decoded, self._forward(decoded, finish)))
                    while len(behind) > IN_FLIGHT:
                        _report(done, *behind.popleft())
                while behind:
                    _report(done, *behind.popleft())
            except BaseException:
                self.pool.shutdown(wait=True, cancel_futures=True)
                for decoded, job in behind:
                    if job is None or (_succeeded(job) and whole(job.result())):
                        _report(done, decoded, job)
                raise
            finally:
                self.pool.shutdown(wait=True)

    def _forward(self, decoded: Decoded, finish: Callable[[Decoded, Features], Any]) -> Future | None:
        if decoded.inputs is None:
            return None
        started = time.perf_counter()
        features = self.featurizer.forward(decoded.inputs, maps=self.maps, relative=self.relative, alongside=True)
        decoded.timings["forward"] = time.perf_counter() - started
        return self.pool.submit(finish, decoded, features)

    def _decode(self, item: ImageLike) -> tuple[np.ndarray | None, np.ndarray | None, str | None, float]:
        """One item decoded, resized and normalised in a worker thread: its crop and ``(1, ...)`` model
        input, or ``None`` and the reason."""
        started = time.perf_counter()
        try:
            crop, model_input = self.featurizer.decode(item)
            return crop, model_input, None, time.perf_counter() - started
        except ImageError as exc:
            return None, None, str(exc), time.perf_counter() - started

    def _collect(self, index: int, positions: Sequence[int], jobs: list[Future]) -> Decoded:
        crops, inputs, kept, skipped, seconds = [], [], [], [], 0.0
        for position, job in zip(positions, jobs):
            crop, model_input, reason, spent = job.result()
            seconds += spent
            if model_input is None:
                skipped.append({"source": str(self.items[position]), "reason": reason})
            else:
                crops.append(crop)
                inputs.append(model_input)
                kept.append(position)
        pictures = np.stack(crops) if crops and all(c is not None for c in crops) else None
        return Decoded(index, kept, np.concatenate(inputs) if inputs else None, pictures, skipped, {"preprocess": seconds})


def _report(done: Callable[[Decoded, Any], None], decoded: Decoded, job: Future | None) -> None:
    done(decoded, None if job is None else job.result())


def _succeeded(job: Future) -> bool:
    return job.done() and not job.cancelled() and job.exception() is None


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
