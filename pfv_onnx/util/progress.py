"""A one-line progress bar on stderr, for terminals only."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """``[#####.....] 12/40 images, 3.1 s`` redrawn in place on a terminal, for runs of more than a few
    items; silent otherwise, and when not ``enabled``."""

    WIDTH = 30
    FEW = 4

    def __init__(self, total: int, enabled: bool = True, unit: str = "images", stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.total = total
        self.done = 0
        self.unit = unit
        self.started = time.perf_counter()
        self.enabled = enabled and total > self.FEW and self.stream.isatty()

    def update(self, n: int = 1) -> None:
        self.done += n
        if self.enabled:
            filled = self.WIDTH * self.done // self.total
            bar = "#" * filled + "." * (self.WIDTH - filled)
            elapsed = time.perf_counter() - self.started
            self.stream.write(f"\r[{bar}] {self.done}/{self.total} {self.unit}, {elapsed:.1f} s")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
