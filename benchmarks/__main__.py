"""``python -m benchmarks``: PFV against the bare forward pass, per model, batch and provider; folders at
scale; and, where torch is installed, the PyTorch reference. Prints tables, writes JSON and RESULTS.md.

    python -m benchmarks                       # the full set (a few minutes on 2 cores)
    python -m benchmarks --quick --json r.json # a smoke run (CI)
    python -m benchmarks --results benchmarks/RESULTS.md --throughput 200,2000 --dask --corpus
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


from . import cluster, corpus, overhead, solver, throughput, torch_reference, weightings
from .environment import PROVIDERS, machine
from .models import mobilenet_v2_qdq, resnet50_random, vgg16_random, vit_random
from .providers import saved as saved_runtimes
from .providers import section as runtimes_section

def configurations(quick: bool) -> list[tuple[str, object, list[int]]]:
    if quick:
        return [("mobilenet_v2", "mobilenet_v2", [4]), ("vgg16 (random)", vgg16_random(size=64, pooled_head=True), [2]), ("resnet50 (random)", resnet50_random(size=64), [2])]
    return [
        ("mobilenet_v2", "mobilenet_v2", [1, 8, 32]),
        ("mobilenet_v2 (QDQ uint8)", mobilenet_v2_qdq(), [8, 32]),
        ("efficientnet_lite0", "efficientnet_lite0", [1, 8, 32]),
        ("vgg16 (random)", vgg16_random(), [1, 8]),
        ("resnet50 (random)", resnet50_random(), [1, 8]),
        ("vit_s16 (random)", vit_random(), [1, 8]),
        ("vit_s16, 4 registers (random)", vit_random(prefix=5), [8]),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small models and batches, two runs")
    parser.add_argument("--runs", type=int, default=7, help="interleaved runs per configuration (medians)")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--results", help="write the tables to this markdown file (benchmarks/RESULTS.md)")
    parser.add_argument("--throughput", default="", help="explain over folders of these sizes, e.g. 200,2000")
    parser.add_argument("--dask", action="store_true", help="the atlas's scan and evaluate in process and on a local two-worker Dask cluster")
    parser.add_argument("--corpus", action="store_true", help="PFV over the bare pass across the export corpus (tests/corpus)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference even where torch is installed")
    args = parser.parse_args(argv)
    runs = 2 if args.quick else args.runs
    info = machine()
    print(f"{info['cpu']}, {info['cores']} cores, onnxruntime {info['onnxruntime']}")
    data: dict = {"machine": info, "quick": args.quick, "runs": runs}

    def done(section: str, value: object) -> None:  # each table is written as soon as it is measured
        data[section] = value
        if args.json:
            Path(args.json).write_text(json.dumps(data, indent=2), encoding="utf-8")

    providers = [p for p in PROVIDERS if p in info["providers"]]
    print(overhead.HEADER)
    rows, unusable = [], {}
    for name, model, batches in configurations(args.quick):
        for provider in providers:
            for batch in batches:
                try:
                    result = overhead.measure(name, model, batch, runs=runs, provider=provider)
                except Exception as exc:  # a provider listed but not usable here (no device, no library)
                    unusable[provider] = str(exc).splitlines()[0][:200]
                    continue
                print(result.row(), flush=True)
                rows.append(overhead.as_dict(result))
    for provider, reason in unusable.items():
        print(f"{provider}: not usable here ({reason})")
    done("results", rows)
    done("unusable", unusable)

    print(weightings.HEADER)
    by_weighting = []
    for name, model, batches in configurations(args.quick)[: 1 if args.quick else None]:
        if "QDQ" in name:
            continue
        for r in weightings.measure(name, model, max(batches), runs, relevance="random" not in name):
            print(weightings.row(r), flush=True)
            by_weighting.append(r)
    done("weightings", by_weighting)

    print(solver.HEADER)
    solvers = []
    for name, model, batches in configurations(args.quick):
        for batch in batches:
            r = solver.measure(name, model, batch, runs)
            print(solver.row(r), flush=True)
            solvers.append(r)
    done("solvers", solvers)

    scale = []
    if args.throughput:
        print(throughput.HEADER)
        with tempfile.TemporaryDirectory() as work:
            scale = throughput.compare([int(n) for n in args.throughput.split(",")], Path(work), repeats=1 if args.quick else 3)
        for r in scale:
            print(throughput.row(r))
    done("throughput", scale)

    scale_out = []
    if args.dask:
        print(cluster.HEADER)
        scale_out = cluster.measure(repeats=1 if args.quick else 2)
        for r in scale_out:
            print(cluster.row(r), flush=True)
    done("dask", scale_out)

    exports = []
    if args.corpus:
        print(corpus.HEADER)
        exports = corpus.measure(runs)
        for r in exports:
            print(corpus.row(r), flush=True)
    done("corpus", exports)

    reference = []
    if torch_reference.available() and not args.no_torch and not args.quick:
        print(torch_reference.HEADER)
        for name, batch in (("mobilenet_v2", 32), ("vgg16 (random)", 8)):
            r = torch_reference.measure(name, batch, runs=max(3, runs // 2))
            print(torch_reference.row(r), flush=True)
            reference.append(r)

    done("torch", reference)
    if args.results:
        Path(args.results).write_text(results_markdown(data), encoding="utf-8")
    return 0


def results_markdown(data: dict) -> str:
    data = {key: [] for key in ("results", "weightings", "solvers", "throughput", "dask", "corpus", "torch")} | {"unusable": {}} | data
    m = data["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Measured {m['date']} on {m['cpu']} ({m['cores']} cores), Python {m['python']}, onnxruntime {m['onnxruntime']}; "
        f"providers installed: {', '.join(m['providers'])}. Medians of {data['runs']} interleaved runs (`python -m benchmarks`).",
        "",
        "## PFV over the bare forward pass",
        "",
        "PFV = its forward pass + decomposition + weighting, on the same preprocessed batch as the bare pass of the",
        "unmodified model; preprocessing, drawing and PNG encoding (one thread) are shown beside it. Times in ms.",
        "",
        overhead.HEADER,
        *[overhead.Overhead(**r).row() for r in data["results"]],
        "",
        "*PFV / bare* compares PFV with the bare model run the same way: in PFV's chunks (its default for the provider,",
        "8 images per inference call on the CPU), on a session with the same options (onnxruntime's threads spin between",
        "operators for a light model's lone batch, and not for a heavy model; see docs/speed.md). *bare, default",
        "session* is the bare model in the same chunks on a session with onnxruntime's default options, as a user's own",
        "script makes one (its threads spin); *PFV / bare default* compares with that. *bare, one call* is the whole",
        "batch in one call with PFV's session options; *PFV / bare default, one call* compares PFV with the whole batch",
        "in one call on a default session, as a plain script runs it (the targets' measure). On the CPU, chunks that",
        "fit the cache make the light models faster, for the bare pass and PFV alike. The",
        "*forward* column is PFV's forward pass: the model plus the channel sums of the taps inside the graph (a 1x1",
        "convolution per tap, one multiply-add per channel and pixel). *decomposition* is the PCA of `F_N`; *weighting*",
        "is upsampling, weighting by `A^b` and the joint normalisation.",
    ]
    for provider, reason in data["unusable"].items():
        lines += ["", f"{provider}: installed but not usable here ({reason})."]
    measured = {r["provider"] for r in data["results"]}
    if "CUDA" not in measured:
        lines += ["", "No GPU provider was usable on this machine: the CUDA rows (I/O binding, device timings) come from a",
                  "machine with onnxruntime-gpu and a GPU (`pip install -e '.[gpu]'`, then `python -m benchmarks`)."]
    lines += ["", "### The targets", "", "PFV against the bare pass as a plain script runs it (the whole batch in one call on a session with",
              "onnxruntime's default options), and folder runs against a plain loop that writes one PNG per image:", "",
              *overhead.targets(data["results"], data["throughput"], corpus.median(data["corpus"]) if data["corpus"] else None)]
    if data["weightings"]:
        lines += ["", "## Weightings: cost and relevance side by side", "",
                  "PFV over the bare forward pass (as above) with each weighting, at the largest batch above; for the models with",
                  "real weights, where the weighting map and the PFV picture point on the 48 shipped composites",
                  "(`pfv-onnx evaluate MODEL --no-faithfulness`: ROC-AUC for the object's pixels, the share of images whose",
                  "maximum lies inside the object, and on the outer 1/16 border). *focus* reads `F_N` and the last earlier tap,",
                  "*paper* every earlier tap, *final* `F_N` alone.", "",
                  weightings.HEADER, *[weightings.row(r) for r in data["weightings"]]]
    if data["solvers"]:
        lines += ["", "## The PCA solver", "", "The decomposition as PFV runs it (one BLAS thread), on the features of the sample photos: the default",
                  "solver (randomised, iterated until every component is within its tolerance of the exact one, or exact where",
                  "the eigenvalues lie too close for that) against an exact `eigh`; medians of interleaved runs.", "",
                  solver.HEADER, *[solver.row(r) for r in data["solvers"]]]
    if data["throughput"]:
        lines += ["", "## Folders at scale", "", "`pfv-onnx explain` against a plain loop that decodes, preprocesses and runs the bare forward",
                  "pass on the same files and writes one PNG per image (its input crop, with the encoder PFV's pictures use;",
                  "batches of 32, the shipped gcompris5 photos copied round-robin): one inference",
                  f"call per batch, as a script would, and in chunks of {throughput.PLAIN['plain-chunked']} images, as PFV runs its "
                  "forward passes on the CPU. Each",
                  "run is a process of its own, for its peak resident memory; medians of three runs in rotating order.", "",
                  throughput.HEADER, *[throughput.row(r) for r in data["throughput"]]]
    if data["dask"]:
        lines += ["", "## On Dask", "",
                  "The atlas's scan of the 80 shipped dataset photos (a basis fitted beforehand) and evaluate's batches (with its",
                  "deletion and insertion curves) in one process, and on a local Dask cluster of two worker processes on the same",
                  "machine: the cluster's start and each worker's model loading count, as a user meets them. Medians of two runs.", "",
                  cluster.HEADER, *[cluster.row(r) for r in data["dask"]]]
    if data["corpus"]:
        lines += ["", "## Across the export corpus", "",
                  "Every model of `tests/corpus` (real exports from Keras, Paddle, timm, Hugging Face and plain torch, at small widths",
                  f"and input sizes, random weights) at batch {corpus.BATCH}, measured as the table above measures the bundled models.", "",
                  corpus.HEADER, *[corpus.row(r) for r in data["corpus"]]]
    if data["torch"]:
        lines += ["", "## The PyTorch reference", "",
                  "The paper's method in PyTorch with forward hooks, on the same weights as the ONNX model, doing the same work as",
                  "pfv-onnx: hooks on the modules that make the tensors pfv-onnx taps, the forward passes in the same chunks, only the",
                  "three components that are drawn (`torch.linalg.eigh` of the covariance, or `torch.pca_lowrank` where pfv-onnx's",
                  "solver is randomised too), the model in channels-last memory and inference mode. Its OpenMP threads wait",
                  "passively, so that none slows the next candidate.",
                  "", torch_reference.HEADER, *[torch_reference.row(r) for r in data["torch"]]]
    if saved_runtimes():  # measured environment by environment: python -m benchmarks.providers
        lines += ["", runtimes_section(saved_runtimes()).rstrip("\n")]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
