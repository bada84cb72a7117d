"""The GPU check: PFV on an accelerator's execution provider against the bare forward pass there, and its
pictures against the CPU's. ``benchmarks/gpu.sh`` runs it on a machine with an NVIDIA GPU; ``--provider CPU``
runs the same steps here (the script's dry run).

For MobileNetV2 (bundled) and ResNet-50 (random weights) at batch 32, interleaved medians: PFV over the bare
pass on the provider (the targets: 1.05 or less), and the largest difference, in levels of 255, between the
provider's pictures and the CPU's (the target: 1 or less), with ``F_N``'s statistics computed in the graph (the
default on a GPU: ``F_N`` stays on the device) and without. Writes ``gpu.md`` and ``gpu.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from pfv_onnx import PFV
from pfv_onnx.runtime import available_providers, onnxruntime

from . import overhead
from .environment import machine
from .models import resnet50_random

TARGET_RATIO, TARGET_LEVELS = 1.05, 1.0
HEADER = ("| model | batch | provider | bare (ms) | PFV (ms) | PFV / bare | largest difference from the CPU's picture (levels), "
          "statistics in graph | the same, F_N fetched |\n|---|---|---|---|---|---|---|---|")


def picture_levels(model, x: np.ndarray, provider: str, statistics: bool) -> float:
    """The largest difference between ``provider``'s PFV pictures of ``x`` and the CPU's, in levels of 255."""
    cpu = PFV(model, providers=["CPUExecutionProvider"], preset="imagenet")(x).rgb
    there = PFV(model, providers=[provider], preset="imagenet", statistics_in_graph=statistics)(x).rgb
    return float(np.abs(there - cpu).max() * 255)


def check(provider: str, batch: int, runs: int) -> list[dict]:
    rows = []
    for name, model in (("mobilenet_v2", "mobilenet_v2"), ("resnet50 (random)", resnet50_random())):
        cost = overhead.measure(name, model, batch, runs, provider=provider)
        x = PFV(model, preset="imagenet").featurizer.load(overhead.sample_paths(batch)).inputs
        levels = {flag: picture_levels(model, x, provider, flag) for flag in (True, False)}
        rows.append({"model": name, "batch": batch, "provider": cost.provider, "bare_ms": cost.bare_s * 1e3, "pfv_ms": cost.pfv_s * 1e3,
                     "ratio": cost.ratio, "levels_statistics": levels[True], "levels_fetched": levels[False]})
        print(row(rows[-1]), flush=True)
    return rows


def row(r: dict) -> str:
    return (f"| {r['model']} | {r['batch']} | {r['provider']} | {r['bare_ms']:.1f} | {r['pfv_ms']:.1f} | **{r['ratio']:.3f}** "
            f"| {r['levels_statistics']:.2f} | {r['levels_fetched']:.2f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check")
    parser.add_argument("--provider", default="CUDA", help="CUDA (default), TensorRT, or CPU for a dry run")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--runs", type=int, default=9, help="interleaved runs (medians)")
    parser.add_argument("--out", default="gpu-results", help="the folder for gpu.md and gpu.json")
    args = parser.parse_args(argv)
    provider = f"{args.provider}ExecutionProvider"
    if provider not in available_providers():
        print(f"{provider} is not usable here (onnxruntime {onnxruntime().__version__}: {', '.join(available_providers())})", file=sys.stderr)
        return 2
    print(HEADER)
    rows = check(provider, args.batch, args.runs)
    met = all(r["ratio"] <= TARGET_RATIO and max(r["levels_statistics"], r["levels_fetched"]) <= TARGET_LEVELS for r in rows)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    where = "; ".join(f"{key}: {value}" for key, value in machine().items())
    lines = [f"# GPU check\n\n{where}; onnxruntime {onnxruntime().__version__}.\n", HEADER, *map(row, rows),
             f"\nTargets (PFV / bare <= {TARGET_RATIO}, pictures within {TARGET_LEVELS:g} level of the CPU's): {'met' if met else 'NOT met'}.\n"]
    (out / "gpu.md").write_text("\n".join(lines), encoding="utf-8")
    (out / "gpu.json").write_text(json.dumps({"machine": machine(), "rows": rows, "targets_met": met}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
