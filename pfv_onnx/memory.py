"""Memory: what the machine has available, checked before pfv-onnx allocates something large, so that a
model, an option or a file that asks for too much gets one clear line instead of a MemoryError or a visit
from the out-of-memory killer."""

from __future__ import annotations

import os

from .errors import PFVError

# Used when the platform does not say (no /proc/meminfo, no sysconf): a cautious 4 GiB.
FALLBACK = 4 << 30


def available_bytes() -> int:
    """Memory the system can give without swapping: Linux's MemAvailable, else the free physical pages."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return FALLBACK


def require(needed: int, what: str, hint: str = "") -> None:
    """Refuse with one line when ``needed`` bytes (for ``what``) are more than the memory available."""
    available = available_bytes()
    if needed > available:
        advice = f": {hint}" if hint else ""
        raise PFVError(f"{what} needs about {needed / 2**30:,.1f} GB, more than the {available / 2**30:,.1f} GB available{advice}")
