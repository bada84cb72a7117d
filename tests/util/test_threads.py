"""single_threaded: BLAS and OpenCV on the calling thread inside, the previous settings back after the last
of several concurrent contexts (as in a folder run: the run holds it, its worker threads visualise)."""

from __future__ import annotations

import threading

import cv2
from threadpoolctl import threadpool_info

from pfv_onnx.util.threads import single_threaded


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_limits_inside_and_restores_after_the_last_of_concurrent_contexts():
    before = cv2.getNumThreads(), blas_threads()
    seen = {}

    def worker():
        with single_threaded():
            seen["worker inside"] = cv2.getNumThreads()

    with single_threaded():
        seen["inside"] = cv2.getNumThreads(), blas_threads()
        other = threading.Thread(target=worker)
        other.start()
        other.join(10)
        with single_threaded():  # nested
            pass
        seen["after the worker left"] = cv2.getNumThreads(), blas_threads()
    assert seen["inside"] == (1, {1}) and seen["worker inside"] == 1
    assert seen["after the worker left"] == (1, {1})
    assert (cv2.getNumThreads(), blas_threads()) == before
