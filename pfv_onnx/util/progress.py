"""A one-line progress bar: on stderr in a terminal, as an output that updates itself in a Jupyter notebook."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO


class Progress:
    """``[#####.....] 12/40 images, 3.1 s`` redrawn in place on a terminal, or in its output cell in a notebook
    (``stream`` left out), for runs of more than a few items; silent otherwise, and when not ``enabled``."""

    WIDTH = 30
    FEW = 4

    def __init__(self, total: int, enabled: bool = True, unit: str = "images", stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        self.unit = unit
        self.started = time.perf_counter()
        enabled = enabled and total > self.FEW
        self.cell = _notebook_output() if enabled and stream is None and not self.stream.isatty() else None
        self.enabled = enabled and (self.stream.isatty() or self.cell is not None)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.enabled:
            filled = self.WIDTH * self.done // self.total
            bar = "#" * filled + "." * (self.WIDTH - filled)
            elapsed = time.perf_counter() - self.started
            line = f"[{bar}] {self.done}/{self.total} {self.unit}, {elapsed:.1f} s"
            if self.cell is not None:
                self.cell.update({"text/plain": line}, raw=True)
                return
            self.stream.write(f"\r{line}")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.cell is None:
            self.stream.write("\n")
            self.stream.flush()


@contextmanager
def progress_bar(enabled: bool = True, unit: str = "images") -> Iterator[Callable[[int, int], None]]:
    """For the block, a callback ``(done, total)`` (the images a finished batch held, the number in all)
    that draws a :class:`Progress` bar, made at the first call, when the total is known."""
    bar: list[Progress] = []

    def update(done: int, total: int) -> None:
        if not bar:
            bar.append(Progress(total, enabled=enabled, unit=unit))
        bar[0].update(done)

    try:
        yield update
    finally:
        if bar:
            bar[0].close()


def from_totals(update: Callable[[int, int], None]) -> Callable[[int, int], None]:
    """A callback of the images finished so far and their total, ``(done, total)``, that passes ``update``
    (a :func:`progress_bar` callback) what each call adds."""
    shown = [0]

    def call(done: int, total: int) -> None:
        update(done - shown[0], total)
        shown[0] = done

    return call


def _notebook_output() -> Any:
    """An output of the running notebook cell that can be redrawn (an IPython display handle), or ``None``
    outside a Jupyter kernel."""
    shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None  # never imported here
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return None
    from IPython.display import display

    return display({"text/plain": ""}, raw=True, display_id=True)
