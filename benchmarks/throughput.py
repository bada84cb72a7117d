"""Folders at scale: ``explain`` over hundreds and thousands of photos against a plain loop that decodes,
preprocesses and runs the bare forward pass on the same files and writes one PNG per image (images per
second, peak memory).

Each run is a subprocess of its own, so its peak resident memory is its own:
``python -m benchmarks.throughput --mode plain|plain-chunked|explain|explain-pfv --folder DIR --out DIR`` prints
one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pfv_onnx import PFV
from pfv_onnx.images import bundled
from pfv_onnx.graph import image_input, load_model
from pfv_onnx.images.preprocess import expand_inputs, fit_image, load_image, to_model_input
from pfv_onnx.presets import get_preset
from pfv_onnx.render import write_png
from pfv_onnx.runtime import Session, default_chunk

BATCH = 32


def make_folder(folder: Path, count: int) -> Path:
    """``count`` photo files (the shipped gcompris5 photos, copied round-robin under distinct names)."""
    photos = sorted((bundled.sample_images()[0].parent / "gcompris5").rglob("*.webp"))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        shutil.copyfile(photos[i % len(photos)], folder / f"{i:05d}_{photos[i % len(photos)].name}")
    return folder


def plain_loop(folder: Path, out: Path, chunk: int | None = None) -> int:
    """Decode, preprocess and run the bare model on every file, batch by batch, as a user's loop would: one
    inference call per batch, or calls of ``chunk`` images (as PFV runs its forward passes); then write one
    PNG per image (its model-input crop) with the encoder PFV's pictures use."""
    source = load_model(bundled.model_path())
    session = Session(source)
    spec = image_input(source)
    preset = get_preset(next(p.value for p in source.metadata_props if p.key == "preset"))
    paths = expand_inputs([folder])
    out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(paths), BATCH):
        batch = paths[start : start + BATCH]
        pixels = np.stack([fit_image(load_image(p), spec.size_or_default) for p in batch])
        session.run(to_model_input(pixels, preset, spec.layout, spec.channels, spec.dtype), chunk_size=chunk)
        for path, picture in zip(batch, pixels):
            write_png(out / f"{path.stem}.png", picture)
    return len(paths)


def explain_run(folder: Path, out: Path, pictures: list[str]) -> int:
    from pfv_onnx.apps.explain import explain

    summary = explain(PFV(), [folder], out, batch=BATCH, show_progress=False, overwrite=True, pictures=pictures)
    return len(summary["images"])


def run_once(mode: str, folder: Path, out: Path) -> dict:
    """One measured run in a fresh process: seconds, images, images per second, peak RSS."""
    command = [sys.executable, "-m", "benchmarks.throughput", "--mode", mode, "--folder", str(folder), "--out", str(out)]
    line = subprocess.run(command, capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1]).stdout
    return json.loads(line.strip().splitlines()[-1])


# explain writes four pictures per image by default; "explain-pfv" only the PFV picture (--pictures pfv).
MODES = {"explain": 4, "explain-pfv": 1}
# The plain loop in one call per batch, and in PFV's chunks on the CPU (default_chunk).
PLAIN = {"plain": None, "plain-chunked": default_chunk(["CPUExecutionProvider"])}


def compare(counts: list[int], work: Path, repeats: int = 3) -> list[dict]:
    """The plain loops and each explain mode, in rotating order, ``repeats`` times per count; medians."""
    rows = []
    for count in counts:
        folder = make_folder(work / f"photos_{count}", count)
        order = [*PLAIN, *MODES]
        runs: dict[str, list[dict]] = {mode: [] for mode in order}
        for r in range(repeats):
            for mode in order[r % len(order):] + order[: r % len(order)]:
                runs[mode].append(run_once(mode, folder, work / f"out_{count}_{mode}"))
        rate = {mode: float(np.median([x["images_per_s"] for x in runs[mode]])) for mode in order}
        for mode, per_image in MODES.items():
            rows.append({
                "images": count,
                "mode": mode,
                "plain_images_per_s": round(rate["plain"], 1),
                "plain_chunked_images_per_s": round(rate["plain-chunked"], 1),
                "explain_images_per_s": round(rate[mode], 1),
                "ratio": round(rate[mode] / rate["plain"], 3),
                "ratio_chunked": round(rate[mode] / rate["plain-chunked"], 3),
                "pngs_written": per_image * count + -(-count // BATCH),
                "plain_peak_mb": max(x["peak_mb"] for x in runs["plain"]),
                "explain_peak_mb": max(x["peak_mb"] for x in runs[mode]),
            })
        shutil.rmtree(folder)
        for mode in order:
            shutil.rmtree(work / f"out_{count}_{mode}", ignore_errors=True)
    return rows


HEADER = (
    f"| images | pictures per image | plain loop (images/s) | plain loop in chunks of {PLAIN['plain-chunked']} (images/s) | explain (images/s) "
    "| explain / plain | explain / plain in chunks | PNGs written | peak memory, plain (MB) | peak memory, explain (MB) |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def row(r: dict) -> str:
    return (
        f"| {r['images']} | {MODES[r['mode']]} | {r['plain_images_per_s']} | {r['plain_chunked_images_per_s']} | {r['explain_images_per_s']} "
        f"| **{r['ratio']:.2f}** | **{r['ratio_chunked']:.2f}** | {r['pngs_written']} | {r['plain_peak_mb']:.0f} | {r['explain_peak_mb']:.0f} |"
    )


def peak_memory_mb() -> float:
    """This process's peak resident memory. ``VmHWM`` starts afresh at exec; ``ru_maxrss`` would carry the
    parent's peak over into the child."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=[*PLAIN, *MODES], required=True)
    parser.add_argument("--folder", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    start = time.perf_counter()
    if args.mode in PLAIN:
        count = plain_loop(Path(args.folder), Path(args.out), PLAIN[args.mode])
    else:
        count = explain_run(Path(args.folder), Path(args.out), ["pfv"] if args.mode == "explain-pfv" else ["pfv", "overlay", "activation", "components"])
    seconds = time.perf_counter() - start
    peak_mb = peak_memory_mb()
    print(json.dumps({"mode": args.mode, "images": count, "seconds": round(seconds, 3), "images_per_s": count / seconds, "peak_mb": round(peak_mb, 1)}))


if __name__ == "__main__":
    main()
