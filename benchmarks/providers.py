"""PFV on every usable runtime, each as a ratio to the bare forward pass on the same runtime.

For each onnxruntime execution provider installed and usable here (CPU, OpenVINO, CUDA, TensorRT), and for
OpenVINO's own runtime reading the ONNX files when it is installed, on the same preprocessed batch of the
sample photos, interleaved, medians:

``bare``       the unmodified model;
``relative``   PFV with colours relative to the batch (forward pass, PCA, weighting, normalisation);
``statistics`` the same with ``F_N``'s channel sums and scatter computed in the graph and ``F_N`` projected
               there (the default on a GPU: only small matrices leave it);
``numpy``      PFV with a fitted basis, the NumPy path (forward pass and :func:`pfv_onnx.core.transform`);
``in graph``   the model exported with that basis (``pfv-onnx export --basis``), its picture output only.

onnxruntime-openvino replaces onnxruntime, so the providers of several environments are measured by running
this in each; every run saves its rows as a JSON file in ``benchmarks/providers/`` and rewrites the table
in RESULTS.md from all of them::

    python -m benchmarks.providers --save "onnxruntime" --results benchmarks/RESULTS.md
    .venv-openvino/bin/python -m benchmarks.providers --save "onnxruntime-openvino" --results benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import onnx

from pfv_onnx import PFV, export
from pfv_onnx.images import bundled
from pfv_onnx.graph import read_tapped_outputs
from pfv_onnx.runtime import Session, available_providers, onnxruntime

from .environment import PROVIDERS, machine
from .overhead import interleaved, sample_paths

FRAGMENTS = Path(__file__).parent / "providers"
HEADING = "## Across runtimes: PFV relative to the batch, and fitted in NumPy or inside the graph"
HEADER = ("| model | batch | runtime | environment | bare ms | relative ms (/ bare) | relative, statistics in graph ms (/ bare) "
          "| fitted, NumPy ms (/ bare) | fitted, in graph ms (/ bare) | in graph / NumPy |\n|---|---|---|---|---|---|---|---|---|---|")
MODELS = (("mobilenet_v2", (8, 32)), ("efficientnet_lite0", (8, 32)))


def measure_provider(name: str, batch: int, provider: str, runs: int, basis: Path, exported: Path) -> dict:
    """The four steps on one onnxruntime execution provider, in PFV's chunks for it."""
    relative = PFV(name, providers=[provider], statistics_in_graph=False)
    statistics = PFV(name, providers=[provider], statistics_in_graph=True)
    fitted = PFV(name, providers=[provider], basis=basis)
    chunk = relative.featurizer.chunk_size
    loaded = relative.featurizer.load(sample_paths(batch))
    x = loaded.inputs
    spin = relative.featurizer.session.spin  # the bare passes run as PFV runs a lone batch
    bare = Session(onnx.load(str(bundled.model_path(name))), providers=[provider], spin=spin)
    model = onnx.load(str(exported))
    in_graph = Session(model, providers=[provider], spin=spin)
    picture = read_tapped_outputs(model).picture
    steps = {
        "bare": lambda: bare.run(x, chunk_size=chunk),
        "relative": lambda: relative(loaded),
        "statistics": lambda: statistics(loaded),
        "numpy": lambda: fitted.transform(loaded),
        "in_graph": lambda: in_graph.run(x, [picture], chunk_size=chunk),
    }
    return {"model": name, "batch": batch, "runtime": provider.replace("ExecutionProvider", ""), "chunk": chunk, **interleaved(steps, runs)}


def measure_openvino(name: str, batch: int, runs: int, exported: Path) -> dict | None:
    """The bare model and the exported one compiled by OpenVINO's own runtime for its CPU plugin, in float32
    (on CPUs with AMX it would compute in bfloat16 by default, and the picture would differ by several
    levels), in chunks of 8; ``None`` when OpenVINO is not installed. The NumPy steps need onnxruntime."""
    try:
        import openvino
    except ImportError:
        return None
    core = openvino.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    bare = core.compile_model(core.read_model(str(bundled.model_path(name))), "CPU", config)
    in_graph = core.compile_model(core.read_model(str(exported)), "CPU", config)
    x = PFV(name).featurizer.load(sample_paths(batch)).inputs
    requests = (bare.create_infer_request(), in_graph.create_infer_request())

    def run(request) -> None:
        for start in range(0, len(x), 8):
            request.infer({0: x[start : start + 8]})

    steps = {"bare": lambda: run(requests[0]), "in_graph": lambda: run(requests[1])}
    return {"model": name, "batch": batch, "runtime": f"OpenVINO {openvino.__version__.split('-')[0]} (own runtime)", "chunk": 8, **interleaved(steps, runs)}


def measure(runs: int, quick: bool) -> list[dict]:
    usable = [p for p in PROVIDERS if p in available_providers()]
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, batches in MODELS[:1] if quick else MODELS:
            basis = PFV(name).fit(bundled.sample_images()).save_basis(Path(work) / f"{name}.npz")
            exported = Path(work) / f"{name}.pfv.onnx"
            export(name, exported, basis=basis)
            for batch in batches[:1] if quick else batches:
                for provider in usable:
                    try:
                        rows.append(measure_provider(name, batch, provider, runs, basis, exported))
                    except Exception as exc:  # listed but not usable here (no device, no library)
                        print(f"{provider}: not usable here ({str(exc).splitlines()[0][:200]})", file=sys.stderr)
                        continue
                    print(row(rows[-1]), flush=True)
                openvino_row = measure_openvino(name, batch, runs, exported)
                if openvino_row:
                    rows.append(openvino_row)
                    print(row(openvino_row), flush=True)
    return rows


def row(r: dict, environment: str = "") -> str:
    bare = r["bare"]

    def cell(key: str) -> str:
        return f"{r[key] * 1e3:.1f} ({r[key] / bare:.2f})" if key in r else "-"

    versus = f"**{r['in_graph'] / r['numpy']:.2f}**" if "numpy" in r else "-"
    return f"| {r['model']} | {r['batch']} | {r['runtime']} | {environment} | {bare * 1e3:.1f} | {cell('relative')} | {cell('statistics')} | {cell('numpy')} | {cell('in_graph')} | {versus} |"


def section(fragments: list[dict]) -> str:
    """The RESULTS.md section of every saved environment's rows."""
    lines = [HEADING, "",
             "Each runtime against its own bare forward pass of the unmodified model, on the same preprocessed batch of the",
             "sample photos, in the same chunks (PFV's default for the provider); medians of interleaved runs, in seconds x 1000.",
             "*relative* is PFV with colours relative to the batch, with the PCA in NumPy, or from `F_N`'s channel sums and",
             "scatter computed in the graph and `F_N` projected where it is (*statistics in graph*, the default on a GPU, where",
             "only those small matrices and the components leave the device); *fitted* is PFV with a basis fitted on the sample photos,",
             "computed by NumPy after the forward pass, or by the model exported with that basis (`pfv-onnx export --basis`),",
             "asked for its picture output only. onnxruntime-openvino replaces onnxruntime, so its rows come from its own",
             "environment (`pip install -e '.[openvino]'`); OpenVINO's own runtime reads the same ONNX files (CPU plugin, float32).",
             "Environments:", ""]
    for fragment in fragments:
        m = fragment["machine"]
        lines.append(f"- *{fragment['environment']}*: {m['date']}, {m['cpu']} ({m['cores']} cores), onnxruntime {m['onnxruntime']}, "
                     f"providers {', '.join(p.replace('ExecutionProvider', '') for p in m['providers'])}.")
    lines += ["", HEADER]
    lines += [row(r, fragment["environment"]) for fragment in fragments for r in fragment["rows"]]
    return "\n".join(lines) + "\n"


def merge_into(results: Path, fragments: list[dict]) -> None:
    """Replace (or append) the section in RESULTS.md."""
    text = results.read_text(encoding="utf-8") if results.exists() else "# Benchmark results\n"
    new = section(fragments)
    if HEADING in text:
        before, after = text.split(HEADING, 1)
        rest = after.split("\n## ", 1)
        text = before + new + ("\n## " + rest[1] if len(rest) > 1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + new
    results.write_text(text, encoding="utf-8")


def saved() -> list[dict]:
    """Every environment's saved rows, by the environment's name."""
    return sorted((json.loads(p.read_text(encoding="utf-8")) for p in FRAGMENTS.glob("*.json")), key=lambda f: f["environment"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.providers")
    parser.add_argument("--runs", type=int, default=9, help="interleaved runs per configuration (medians)")
    parser.add_argument("--quick", action="store_true", help="one model, one batch, two runs")
    parser.add_argument("--save", metavar="NAME", help="the environment's name: save the rows under it in benchmarks/providers/")
    parser.add_argument("--results", help="rewrite this RESULTS.md's section from every saved environment")
    parser.add_argument("--merge-only", action="store_true", help="measure nothing: only rewrite --results from the saved environments")
    args = parser.parse_args(argv)
    if args.merge_only:
        merge_into(Path(args.results), saved())
        return 0
    print(f"onnxruntime {onnxruntime().__version__}: {', '.join(available_providers())}")
    print(HEADER)
    rows = measure(2 if args.quick else args.runs, args.quick)
    if args.save:
        FRAGMENTS.mkdir(exist_ok=True)
        fragment = {"environment": args.save, "machine": machine(), "runs": args.runs, "rows": rows}
        stem = re.sub(r"[^a-z0-9]+", "-", args.save.lower()).strip("-")
        (FRAGMENTS / f"{stem}.json").write_text(json.dumps(fragment, indent=2), encoding="utf-8")
    if args.results:
        merge_into(Path(args.results), saved())
    return 0


if __name__ == "__main__":
    sys.exit(main())
