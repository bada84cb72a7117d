"""Thread pools: how many threads the machine gives this process, and the NumPy core on the calling thread
only.

OpenBLAS (behind NumPy and SciPy) and OpenCV each keep a pool of worker threads that spin for a while after
every parallel call. Their spinning steals the cores from whatever runs next: the next forward pass
(measured: +40% on MobileNetV2 after a two-thread PCA), or, in a folder run, the threads that decode and
write. PFV's NumPy work is a few milliseconds per batch in small calls, so it gains little from those
pools: it runs with one BLAS thread and OpenCV's threading off.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
from threadpoolctl import ThreadpoolController

_lock = threading.Lock()
_depth = 0
_saved: tuple[object, int] | None = None


def worker_count() -> int:
    """The cores this process may run on (its CPU affinity where the platform tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@functools.cache
def _controller() -> ThreadpoolController:
    # Made once (it costs about a millisecond): the BLAS libraries the core uses (NumPy's, SciPy's and
    # OpenCV's) are all loaded when pfv_onnx is imported.
    return ThreadpoolController()


@contextmanager
def single_threaded() -> Iterator[None]:
    """A context in which BLAS and OpenCV run on the calling thread only; the previous settings come back
    when the last of the (possibly concurrent, possibly nested) contexts ends.

    The settings are process-wide, so contexts entered by several threads at once share one limit: it is
    set by the first to enter and lifted by the last to leave, never under a thread still inside.
    """
    global _depth, _saved
    with _lock:
        if _depth == 0:
            limiter = _controller().limit(limits=1, user_api="blas")
            _saved = (limiter, cv2.getNumThreads())
            cv2.setNumThreads(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                limiter, cv_threads = _saved
                limiter.restore_original_limits()
                cv2.setNumThreads(cv_threads)
                _saved = None
