"""PFV's time over the bare onnxruntime forward pass of the unmodified model, interleaved in one process,
with PFV split by stage: preprocess, forward, decomposition, upsampling and weighting, render, PNG encode."""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx

from pfv_onnx import PFV, bundled
from pfv_onnx.graph import load_model
from pfv_onnx.report import write_batch
from pfv_onnx.runtime import Session


@dataclass
class Overhead:
    """Medians in seconds. ``pfv_s`` is what replaces the bare forward pass: PFV's forward, decomposition
    and weighting on the same preprocessed batch; ``ratio`` is ``pfv_s / bare_s``. Preprocessing, drawing
    and PNG encoding are reported beside it (the bare pass has no counterpart for them)."""

    model: str
    batch: int
    provider: str
    runs: int
    bare_s: float
    pfv_s: float
    ratio: float
    stages: dict[str, float] = field(default_factory=dict)

    def row(self) -> str:
        ms = {k: f"{v * 1e3:.1f}" for k, v in self.stages.items()}
        return (
            f"| {self.model} | {self.batch} | {self.provider} | {self.bare_s * 1e3:.1f} | {self.pfv_s * 1e3:.1f} | **{self.ratio:.3f}** "
            f"| {ms['forward']} | {ms['decomposition']} | {ms['weighting']} | {ms['preprocess']} | {ms['render']} | {ms['png_encode']} |"
        )


HEADER = (
    "| model | batch | provider | bare forward (ms) | PFV (ms) | PFV / bare | forward | decomposition | weighting "
    "| preprocess | render | PNG encode |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def sample_paths(batch: int) -> list[Path]:
    """The bundled photos repeated to ``batch`` files."""
    photos = bundled.sample_images()
    return [photos[i % len(photos)] for i in range(batch)]


def measure(name: str, model: onnx.ModelProto | str, batch: int, runs: int = 7, provider: str = "CPUExecutionProvider") -> Overhead:
    """Medians over ``runs`` interleaved pairs (bare, PFV), the order alternating, after one warm-up each.

    Both sessions see the same preprocessed batch in one call and have the same options; thread spinning is
    off in both (a session that spins after its run steals a core from what runs next in the process: the
    other session, or the NumPy core), so the comparison measures PFV, not the interleaving.
    """
    source = load_model(bundled.resolve_model(model) if isinstance(model, str) else model)
    pfv = PFV(source, providers=[provider], chunk_size=None)
    bare = Session(source, providers=[provider], spin=False)
    paths = sample_paths(batch)
    x, pixels, names = pfv.preprocess(paths)
    bare.run(x)
    pfv.run(x, pixels, names)
    bare_t, pfv_t, stages = [], [], {k: [] for k in ("forward", "decomposition", "weighting", "preprocess", "render", "png_encode")}

    def run_bare() -> None:
        start = time.perf_counter()
        bare.run(x)
        bare_t.append(time.perf_counter() - start)

    def run_pfv() -> None:
        start = time.perf_counter()
        result = pfv.run(x, pixels, names)
        pfv_t.append(time.perf_counter() - start)
        for stage in ("forward", "decomposition", "weighting"):
            stages[stage].append(result.timings[stage])

    for i in range(runs):
        first, second = (run_bare, run_pfv) if i % 2 == 0 else (run_pfv, run_bare)
        first()
        second()
    # Beside the comparison: decoding the files, and drawing and writing the pictures (one thread).
    result = pfv.run(x, pixels, names)
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(max(1, runs // 2)):
            start = time.perf_counter()
            pfv.preprocess(paths)
            stages["preprocess"].append(time.perf_counter() - start)
            written = write_batch(Path(tmp), result, 0).wait()
            stages["render"].append(written["render"])
            stages["png_encode"].append(written["png_encode"])
    med = statistics.median
    return Overhead(
        name, batch, provider.replace("ExecutionProvider", ""), runs, med(bare_t), med(pfv_t), med(pfv_t) / med(bare_t),
        {k: med(v) for k, v in stages.items()},
    )


def as_dict(result: Overhead) -> dict:
    return asdict(result)
