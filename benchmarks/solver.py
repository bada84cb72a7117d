"""The PCA of ``F_N`` as PFV runs it (one BLAS thread): the default solver, randomised to its tolerance or
exact where the eigenvalues lie too close, against an exact ``eigh``, on the benchmarked models' features of
the sample photos. Time, and how close the components come (the smallest per-component |corr| of the scores)."""

from __future__ import annotations

import numpy as np
import onnx

from pfv_onnx import PFV
from pfv_onnx.core import feature_matrix, fit_transform_pca
from pfv_onnx.util.threads import single_threaded

from . import overhead

HEADER = (
    "| model | batch | pixels x channels | default solver | default (ms) | exact eigh (ms) | exact / default | smallest abs. corr |\n"
    "|---|---|---|---|---|---|---|---|"
)


def measure(name: str, model: onnx.ModelProto | str, batch: int, runs: int) -> dict:
    pfv = PFV(model, weighting="paper")
    features = pfv.featurizer.forward(pfv.featurizer.load(overhead.sample_paths(batch)).inputs)
    X = feature_matrix(features.final)
    n, c = X.shape
    exact_solver = "covariance" if c <= n else "gram"
    results = {}
    with single_threaded():
        steps = {key: (lambda solver=solver: results.__setitem__(solver, fit_transform_pca(X, 3, solver=solver))) for key, solver in (("default", "auto"), ("exact", exact_solver))}
        med = overhead.interleaved(steps, runs)
    (default, scores), (_, exact) = results["auto"], results[exact_solver]
    corr = min(abs(float(np.corrcoef(scores[:, k], exact[:, k])[0, 1])) for k in range(3))
    return {"model": name, "batch": batch, "shape": [n, c], "solver": default.solver, "default_ms": med["default"] * 1e3, "exact_ms": med["exact"] * 1e3, "min_corr": corr}


def row(r: dict) -> str:
    return (
        f"| {r['model']} | {r['batch']} | {r['shape'][0]} x {r['shape'][1]} | {r['solver']} | {r['default_ms']:.1f} | {r['exact_ms']:.1f} "
        f"| {r['exact_ms'] / r['default_ms']:.1f} | {r['min_corr']:.6f} |"
    )
