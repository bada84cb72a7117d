"""The machine and the providers a benchmark ran on."""

from __future__ import annotations

import datetime
import os
import platform
import sys
from pathlib import Path

from pfv_onnx.runtime import available_providers, onnxruntime

# Providers measured when installed and usable.
PROVIDERS = ("CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider", "OpenVINOExecutionProvider")


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "onnxruntime": onnxruntime().__version__,
        "providers": available_providers(),
        "date": datetime.date.today().isoformat(),
    }
