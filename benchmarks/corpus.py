"""PFV over the bare pass across the export corpus (``tests/corpus``: real exports from Keras, Paddle, timm,
Hugging Face and plain torch, at small widths and input sizes; their weights are filled with seeded random
values as the tests fill them): per model, and the median.

``python -m benchmarks --corpus`` adds this table.
"""

from __future__ import annotations

import importlib.util
import statistics
import warnings
from pathlib import Path
from types import ModuleType

from . import overhead

TESTS = Path(__file__).resolve().parents[1] / "tests"
BATCH = 32
HEADER = "| model | PFV / bare, one call, default session | PFV / bare, same chunks and options |\n|---|---|---|"


def measure(runs: int) -> list[dict]:
    """Each corpus model at batch :data:`BATCH`, the bundled photos as its input (``runs`` interleaved rounds)."""
    corpus = _tests_helper("corpus")  # the corpus ships without its weights; the tests' helper fills them

    rows = []
    for path in sorted(corpus.CORPUS.glob("*.onnx")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # models without a preset: the default one is fine for timing
            r = overhead.measure(path.stem, corpus.load(path.stem), BATCH, runs=runs)
        rows.append({"model": path.stem, "ratio_one_call": r.ratio_one_call, "ratio": r.ratio})
    return rows


def _tests_helper(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"pfv_benchmark_{name}", TESTS / "helpers" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def median(rows: list[dict]) -> float:
    return statistics.median(r["ratio_one_call"] for r in rows)


def row(r: dict) -> str:
    return f"| {r['model']} | {r['ratio_one_call']:.3f} | {r['ratio']:.3f} |"
