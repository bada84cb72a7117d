"""PFV's time over the bare onnxruntime forward pass of the unmodified model, interleaved in one process."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np
import onnx

from pfv_onnx import PFV, bundled
from pfv_onnx.graph import load_model
from pfv_onnx.runtime import Session


@dataclass
class Overhead:
    model: str
    batch: int
    provider: str
    runs: int
    bare_s: float  # median seconds of the bare forward pass
    pfv_s: float  # median seconds of PFV (tapped forward + NumPy core), on the same preprocessed batch
    forward_s: float  # median seconds of the tapped forward pass inside PFV
    core_s: float  # median seconds of the NumPy core inside PFV
    ratio: float  # pfv_s / bare_s

    def row(self) -> str:
        return (
            f"| {self.model} | {self.batch} | {self.provider} | {self.bare_s * 1e3:.0f} | {self.pfv_s * 1e3:.0f} "
            f"| {self.forward_s * 1e3:.0f} | {self.core_s * 1e3:.0f} | **{self.ratio:.3f}** |"
        )

    def as_dict(self) -> dict:
        return asdict(self)


HEADER = (
    "| model | batch | provider | bare forward (ms) | PFV (ms) | PFV forward (ms) | PFV NumPy (ms) | ratio |\n"
    "|---|---|---|---|---|---|---|---|"
)


def sample_batch(pfv: PFV, batch: int) -> np.ndarray:
    """The bundled photos, preprocessed for ``pfv``'s model and repeated to ``batch`` images."""
    x, _, _ = pfv.preprocess(bundled.sample_images())
    return np.ascontiguousarray(np.resize(x, (batch, *x.shape[1:])))


def measure(name: str, model: onnx.ModelProto | str, batch: int, runs: int = 7, providers: list[str] | None = None) -> Overhead:
    """Median times of the bare forward pass and of PFV over ``runs`` interleaved pairs, after one warm-up each.

    Both see the same preprocessed batch in one call (PFV's ``chunk_size=None``) and both sessions have the
    same options. Thread spinning is off in both: a session that spins after its run steals a core from
    whatever runs next in the process (the other session, or the NumPy core), which measures the
    interleaving, not PFV.
    """
    source = load_model(bundled.resolve_model(model) if isinstance(model, str) else model)
    pfv = PFV(source, providers=providers, chunk_size=None)
    bare = Session(source, providers=pfv.providers, spin=False)
    x = sample_batch(pfv, batch)
    bare.run(x)
    pfv(x)
    bare_t, pfv_t, forward_t, core_t = [], [], [], []

    def run_bare() -> None:
        start = time.perf_counter()
        bare.run(x)
        bare_t.append(time.perf_counter() - start)

    def run_pfv() -> None:
        start = time.perf_counter()
        features = pfv.forward(x)
        middle = time.perf_counter()
        pfv.visualise(features)
        end = time.perf_counter()
        pfv_t.append(end - start)
        forward_t.append(middle - start)
        core_t.append(end - middle)

    # Alternate which goes first, so neither always runs in the other's wake (caches, clocks, threads).
    for i in range(runs):
        first, second = (run_bare, run_pfv) if i % 2 == 0 else (run_pfv, run_bare)
        first()
        second()
    med = statistics.median
    return Overhead(name, batch, pfv.providers[0].replace("ExecutionProvider", ""), runs, med(bare_t), med(pfv_t), med(forward_t), med(core_t), med(pfv_t) / med(bare_t))
