"""Each weighting's cost and relevance side by side: PFV over the bare forward pass, and where the map points
on the shipped composites (``pfv-onnx evaluate`` without the faithfulness curves), for the models with
real weights."""

from __future__ import annotations

import onnx

from pfv_onnx.options import WEIGHTINGS
from pfv_onnx.analyses.evaluate import evaluate
from pfv_onnx.analyses.evaluation_batches import map_name, picture_name

from . import overhead

HEADER = (
    "| model | batch | weighting | PFV / bare | forward (ms) | weighting (ms) | map ROC-AUC | map max inside | map max on border "
    "| PFV ROC-AUC | PFV max inside |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def measure(name: str, model: onnx.ModelProto | str, batch: int, runs: int, relevance: bool) -> list[dict]:
    """One row per weighting: the overhead at ``batch`` and, with ``relevance``, the localisation numbers."""
    scores = evaluate(model, faithfulness=False).summary["maps"] if relevance else None
    rows = []
    for weighting in WEIGHTINGS:
        cost = overhead.measure(name, model, batch, runs=runs, weighting=weighting)
        row = {"model": name, "batch": batch, "weighting": weighting, "ratio": cost.ratio, "forward_ms": cost.stages["forward"] * 1e3,
               "weighting_ms": cost.stages["weighting"] * 1e3}
        if scores is not None:
            chosen, picture = scores[map_name(weighting)], scores[picture_name(weighting)]
            row.update(map_auc=chosen["auc"], map_inside=chosen["pointing"], map_border=chosen["border"], pfv_auc=picture["auc"], pfv_inside=picture["pointing"])
        rows.append(row)
    return rows


def row(r: dict) -> str:
    relevance = (
        f"| {r['map_auc']:.3f} | {r['map_inside']:.0%} | {r['map_border']:.0%} | {r['pfv_auc']:.3f} | {r['pfv_inside']:.0%} |"
        if "map_auc" in r else "| | | | | |"
    )
    return f"| {r['model']} | {r['batch']} | {r['weighting']} | **{r['ratio']:.3f}** | {r['forward_ms']:.1f} | {r['weighting_ms']:.1f} {relevance}"
