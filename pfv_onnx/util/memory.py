"""Memory: what the machine has available, checked before pfv-onnx allocates something large, so that a
model, an option or a file that asks for too much gets one clear line instead of a MemoryError or a visit
from the out-of-memory killer."""

from __future__ import annotations

import os

from ..errors import PFVError

# Used when the platform does not say (no /proc/meminfo, no sysconf): a cautious 4 GiB.
FALLBACK = 4 << 30


# A control group's limit and use, version 2 then version 1 (a container's memory, where it has a limit).
CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


def available_bytes() -> int:
    """Memory this process can have without swapping or being killed: the system's available memory
    (Linux's MemAvailable, else the free physical pages), or what is left under its control group's
    limit when that is less."""
    return min(_system_available(), _cgroup_left())


def _system_available() -> int:
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


def _cgroup_left() -> int:
    for limit_file, usage_file in CGROUP_FILES:
        try:
            with open(limit_file, encoding="ascii") as limit, open(usage_file, encoding="ascii") as usage:
                text = limit.read().strip()
                if text == "max":
                    return 1 << 62
                return max(int(text) - int(usage.read().strip()), 0)
        except (OSError, ValueError):
            continue
    return 1 << 62


def require(needed: int, what: str, hint: str = "") -> None:
    """Refuse with one line when ``needed`` bytes (for ``what``) are more than the memory available."""
    available = available_bytes()
    if needed > available:
        advice = f": {hint}" if hint else ""
        raise PFVError(f"{what} needs about {needed / 2**30:,.1f} GB, more than the {available / 2**30:,.1f} GB available{advice}")
