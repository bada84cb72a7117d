"""PFV's time over the bare onnxruntime forward pass of the unmodified model, interleaved in one process,
with PFV split by stage: preprocess, forward, decomposition, upsampling and weighting, render, PNG encode."""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from pfv_onnx import PFV
from pfv_onnx.images import bundled
from pfv_onnx.graph import load_model
from pfv_onnx.render.report import write_batch
from pfv_onnx.runtime import Session, onnxruntime


@dataclass
class Overhead:
    """Medians in seconds. ``pfv_s`` is what replaces the bare forward pass: PFV's forward, decomposition
    and weighting on the same preprocessed batch; ``ratio`` is ``pfv_s / bare_s``, both run in the same
    chunks of ``chunk`` images (PFV's default for the provider) with the same session options (threads
    that spin for a light model, not for a heavy one). ``bare_default_s`` is the bare pass in the same chunks on a session
    with onnxruntime's default options, as a user makes one (``ratio_default`` = ``pfv_s`` over it);
    ``bare_one_call_s`` is the bare pass of the whole batch in one call, as a plain script runs it, and
    ``bare_default_one_call_s`` the same on the default session (:attr:`ratio_one_call` = ``pfv_s`` over it: PFV
    against ``InferenceSession(model).run(None, {input: x})``, the measure the speed targets are set in).
    Preprocessing, drawing and PNG encoding are reported beside it (the bare pass has no counterpart
    for them)."""

    model: str
    batch: int
    provider: str
    runs: int
    chunk: int
    bare_s: float
    bare_default_s: float
    bare_one_call_s: float
    pfv_s: float
    ratio: float
    ratio_default: float
    stages: dict[str, float] = field(default_factory=dict)
    bare_default_one_call_s: float = float("nan")

    @property
    def ratio_one_call(self) -> float:
        """PFV over the bare pass of the whole batch in one call on a default session."""
        return self.pfv_s / self.bare_default_one_call_s

    def row(self) -> str:
        ms = {k: f"{v * 1e3:.1f}" for k, v in self.stages.items()}
        return (
            f"| {self.model} | {self.batch} | {self.provider} | {self.chunk} | {self.bare_one_call_s * 1e3:.1f} "
            f"| {self.bare_default_s * 1e3:.1f} | {self.bare_s * 1e3:.1f} | {self.pfv_s * 1e3:.1f} | **{self.ratio:.3f}** "
            f"| {self.ratio_default:.3f} | {self.ratio_one_call:.3f} | {ms['forward']} | {ms['decomposition']} | {ms['weighting']} | {ms['preprocess']} "
            f"| {ms['render']} | {ms['png_encode']} |"
        )


HEADER = (
    "| model | batch | provider | chunk | bare, one call (ms) | bare, default session (ms) | bare (ms) | PFV (ms) | PFV / bare "
    "| PFV / bare default | PFV / bare default, one call | forward | decomposition | weighting | preprocess | render | PNG encode |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def sample_paths(batch: int) -> list[Path]:
    """The bundled photos repeated to ``batch`` files."""
    photos = bundled.sample_images()
    return [photos[i % len(photos)] for i in range(batch)]


def default_session(source: onnx.ModelProto, provider: str) -> Callable[[np.ndarray, int | None], None]:
    """A run in chunks on an onnxruntime session with its default options (threads spin between runs), as
    a user's own script makes one."""
    session = onnxruntime().InferenceSession(source.SerializeToString(), providers=[provider])
    name = session.get_inputs()[0].name

    def run(x: np.ndarray, chunk: int | None) -> None:
        step = chunk or len(x)
        for start in range(0, len(x), step):
            session.run(None, {name: x[start : start + step]})

    return run


# A pause before each timed step: a session whose threads spin after its run (onnxruntime's default) would
# otherwise take the cores from whichever step follows it.
SETTLE_S = 0.05


def interleaved(steps: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    """Median seconds of each step over ``runs`` rounds, after one warm-up each, the order rotating."""
    for step in steps.values():
        step()
    times: dict[str, list[float]] = {key: [] for key in steps}
    keys = list(steps)
    for i in range(runs):
        for key in keys[i % len(keys) :] + keys[: i % len(keys)]:
            time.sleep(SETTLE_S)
            start = time.perf_counter()
            steps[key]()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


def measure(
    name: str, model: onnx.ModelProto | str, batch: int, runs: int = 7, provider: str = "CPUExecutionProvider", weighting: str | None = None
) -> Overhead:
    """Medians over ``runs`` interleaved rounds of the bare pass (our session options, onnxruntime's
    defaults, and in one call) and PFV (with ``weighting``, default the default), all on the same
    preprocessed batch."""
    source = load_model(bundled.resolve_model(model) if isinstance(model, str) else model)
    pfv = PFV(source, providers=[provider], weighting=weighting)
    chunk = pfv.featurizer.chunk_size
    bare = Session(source, providers=[provider], spin=pfv.featurizer.session.spin)  # as PFV's session for a lone batch
    default = default_session(source, provider)
    paths = sample_paths(batch)
    loaded = pfv.featurizer.load(paths)
    x = loaded.inputs
    stages: dict[str, list[float]] = {k: [] for k in ("forward", "decomposition", "weighting", "preprocess", "render", "png_encode")}

    def run_pfv() -> None:
        result = pfv(loaded)
        for stage in ("forward", "decomposition", "weighting"):
            stages[stage].append(result.timings[stage])

    steps = {
        "bare": lambda: bare.run(x, chunk_size=chunk), "pfv": run_pfv, "default": lambda: default(x, chunk), "one_call": lambda: bare.run(x),
        "default_one_call": lambda: default(x, None),
    }
    med = interleaved(steps, runs)
    for stage in ("forward", "decomposition", "weighting"):
        del stages[stage][0]  # the warm-up
    # Beside the comparison: decoding the files, and drawing and writing the pictures (one thread).
    result = pfv(loaded)
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(max(1, runs // 2)):
            start = time.perf_counter()
            pfv.featurizer.load(paths)
            stages["preprocess"].append(time.perf_counter() - start)
            written = write_batch(Path(tmp), result, 0).wait()
            stages["render"].append(written["render"])
            stages["png_encode"].append(written["png_encode"])
    return Overhead(
        name, batch, provider.replace("ExecutionProvider", ""), runs, chunk or batch, med["bare"], med["default"], med["one_call"],
        med["pfv"], med["pfv"] / med["bare"], med["pfv"] / med["default"], {k: statistics.median(v) for k, v in stages.items()},
        med["default_one_call"],
    )


def as_dict(result: Overhead) -> dict:
    return asdict(result)


# The speed targets: PFV over the bare pass in one call on a default session, and a folder run's rate
# (PFV pictures only) over a plain loop's that writes one PNG per image.
TARGETS = {("mobilenet_v2", 32): 1.10, ("efficientnet_lite0", 32): 1.10, ("resnet50 (random)", 8): 1.05, ("vgg16 (random)", 8): 1.03,
           ("mobilenet_v2 (QDQ uint8)", 32): 1.15}
FOLDER_TARGET = 0.85


CORPUS_TARGET = 1.10  # the export corpus's median model, measured as the models above


def targets(rows: list[dict], folders: list[dict], corpus_median: float | None) -> list[str]:
    """The targets' table (markdown lines): each target, what was measured, met or not (rows measured
    before the one-call default pass was are left out)."""
    lines = ["| what | target | measured | met |", "|---|---|---|---|"]

    def line(what: str, target: str, measured: float, met: bool) -> None:
        lines.append(f"| {what} | {target} | {measured:.3f} | {'yes' if met else '**no**'} |")

    for r in rows:
        target = TARGETS.get((r["model"], r["batch"]))
        measured = Overhead(**r).ratio_one_call
        if target is not None and r["provider"] == "CPU" and math.isfinite(measured):
            line(f"{r['model']}, batch {r['batch']}: PFV / bare, one call, default session", f"<= {target:.2f}", measured, measured <= target)
    for f in folders:
        if f["mode"] == "explain-pfv":
            line(f"{f['images']} photos: PFV pictures written / plain loop writing one PNG each", f">= {FOLDER_TARGET:.2f}", f["ratio"], f["ratio"] >= FOLDER_TARGET)
    if corpus_median is not None:
        line("the export corpus: the median model's PFV / bare, one call, default session", f"<= {CORPUS_TARGET:.2f}", corpus_median, corpus_median <= CORPUS_TARGET)
    return lines
