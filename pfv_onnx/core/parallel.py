"""The core's one way to use several threads, sized by its caller.

OpenCV and NumPy release the GIL for the large work on each image, so threads share a batch's images.
The caller says how many threads the machine gives (:func:`pfv_onnx.util.threads.worker_count`); small batches
use fewer, as starting a thread costs more than a couple of images' work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

# Fewer images than this per thread are done by fewer threads.
IMAGES_PER_THREAD = 2


def run_all(tasks: Sequence[Callable[[], None]], threads: int) -> None:
    """Run every task and wait for all; the first exception is raised here. With more than one thread
    given, each task runs in its own thread (the first in this one), else one after the other here."""
    if threads <= 1:
        for task in tasks:
            task()
        return
    errors: list[BaseException] = []

    def guarded(task: Callable[[], None]) -> None:
        try:
            task()
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    helpers = [threading.Thread(target=guarded, args=(task,)) for task in tasks[1:]]
    for helper in helpers:
        helper.start()
    if tasks:
        guarded(tasks[0])
    for helper in helpers:
        helper.join()
    if errors:
        raise errors[0]


def in_parallel(work: Callable[[range], None], count: int, threads: int = 1) -> None:
    """Run ``work(part)`` on consecutive parts of ``range(count)``: up to ``threads`` parts, each of at least
    :data:`IMAGES_PER_THREAD` items, each in its own thread."""
    threads = max(1, min(threads, count // IMAGES_PER_THREAD))
    bounds = [round(i * count / threads) for i in range(threads + 1)]
    parts = [range(bounds[i], bounds[i + 1]) for i in range(threads) if bounds[i + 1] > bounds[i]]
    run_all([lambda part=part: work(part) for part in parts], threads)
