"""``python -m benchmarks [--quick] [--json PATH]``: PFV over the bare forward pass, as a table and JSON."""

from __future__ import annotations

import argparse
import json
import platform
import sys

from pfv_onnx.runtime import onnxruntime

from .models import vgg16_random
from .overhead import HEADER, measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small batches, few runs")
    parser.add_argument("--runs", type=int, default=7, help="interleaved runs per configuration (median)")
    parser.add_argument("--json", help="write the results to this JSON file")
    args = parser.parse_args(argv)
    runs = 2 if args.quick else args.runs
    configs = (
        [("mobilenet_v2", "mobilenet_v2", 4), ("vgg16 (random)", vgg16_random(size=64), 2)]
        if args.quick
        else [("mobilenet_v2", "mobilenet_v2", 32), ("vgg16 (random)", vgg16_random(), 8)]
    )
    print(HEADER)
    results = []
    for name, model, batch in configs:
        result = measure(name, model, batch, runs=runs)
        print(result.row(), flush=True)
        results.append(result.as_dict())
    if args.json:
        machine = {"python": sys.version.split()[0], "onnxruntime": onnxruntime().__version__, "cpu": platform.processor() or platform.machine()}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"machine": machine, "quick": args.quick, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
