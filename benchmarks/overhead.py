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
    and weighting on the same preprocessed batch; ``ratio`` is ``pfv_s / bare_s``, both run in the same
    chunks of ``chunk`` images (PFV's default for the provider). ``bare_one_call_s`` is the bare pass of the
    whole batch in one call, as a plain script runs it. Preprocessing, drawing and PNG encoding are reported
    beside it (the bare pass has no counterpart for them)."""

    model: str
    batch: int
    provider: str
    runs: int
    chunk: int
    bare_s: float
    bare_one_call_s: float
    pfv_s: float
    ratio: float
    stages: dict[str, float] = field(default_factory=dict)

    def row(self) -> str:
        ms = {k: f"{v * 1e3:.1f}" for k, v in self.stages.items()}
        return (
            f"| {self.model} | {self.batch} | {self.provider} | {self.chunk} | {self.bare_one_call_s * 1e3:.1f} | {self.bare_s * 1e3:.1f} "
            f"| {self.pfv_s * 1e3:.1f} | **{self.ratio:.3f}** "
            f"| {ms['forward']} | {ms['decomposition']} | {ms['weighting']} | {ms['preprocess']} | {ms['render']} | {ms['png_encode']} |"
        )


HEADER = (
    "| model | batch | provider | chunk | bare, one call (ms) | bare, in chunks (ms) | PFV (ms) | PFV / bare | forward | decomposition "
    "| weighting | preprocess | render | PNG encode |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def sample_paths(batch: int) -> list[Path]:
    """The bundled photos repeated to ``batch`` files."""
    photos = bundled.sample_images()
    return [photos[i % len(photos)] for i in range(batch)]


def measure(name: str, model: onnx.ModelProto | str, batch: int, runs: int = 7, provider: str = "CPUExecutionProvider") -> Overhead:
    """Medians over ``runs`` interleaved rounds (bare in PFV's chunks, PFV, bare in one call), the order
    rotating, after one warm-up each.

    All sessions see the same preprocessed batch and have the same options; thread spinning is off in all
    (a session that spins after its run steals a core from what runs next in the process: the other
    session, or the NumPy core), so the comparison measures PFV, not the interleaving.
    """
    source = load_model(bundled.resolve_model(model) if isinstance(model, str) else model)
    pfv = PFV(source, providers=[provider])
    bare = Session(source, providers=[provider], spin=False)
    paths = sample_paths(batch)
    x, pixels, names = pfv.preprocess(paths)
    times: dict[str, list[float]] = {"bare": [], "pfv": [], "one_call": []}
    stages: dict[str, list[float]] = {k: [] for k in ("forward", "decomposition", "weighting", "preprocess", "render", "png_encode")}

    def run_pfv() -> None:
        result = pfv.run(x, pixels, names)
        for stage in ("forward", "decomposition", "weighting"):
            stages[stage].append(result.timings[stage])

    steps = {"bare": lambda: bare.run(x, chunk_size=pfv.chunk_size), "pfv": run_pfv, "one_call": lambda: bare.run(x)}
    for step in steps.values():
        step()
    for key in stages:
        stages[key].clear()
    for i in range(runs):
        for key in list(steps)[i % 3 :] + list(steps)[: i % 3]:
            start = time.perf_counter()
            steps[key]()
            times[key].append(time.perf_counter() - start)
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
    med = {k: statistics.median(v) for k, v in times.items()}
    return Overhead(
        name, batch, provider.replace("ExecutionProvider", ""), runs, pfv.chunk_size or batch, med["bare"], med["one_call"],
        med["pfv"], med["pfv"] / med["bare"], {k: statistics.median(v) for k, v in stages.items()},
    )


def as_dict(result: Overhead) -> dict:
    return asdict(result)
