"""The command line end to end on the bundled model and photos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

from pfv_onnx import bundled
from pfv_onnx.cli import main


def test_demo_writes_decodable_pictures(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    photos = bundled.sample_images()
    for photo in photos:
        with Image.open(out / f"{photo.stem}_pfv.png") as picture:
            assert picture.size == (224, 224) and picture.mode == "RGB"
            assert np.asarray(picture).std() > 10  # not blank
    with Image.open(out / "mosaic.png") as mosaic:
        n = len(photos)
        assert mosaic.size == (n * 224 + (n - 1) * 4, 3 * 224 + 2 * 4)
    printed = capsys.readouterr().out
    assert "chelsea:" in printed and "espresso" in printed


def test_export_command(tmp_path):
    dst = tmp_path / "tapped.onnx"
    proc = subprocess.run([sys.executable, "-m", "pfv_onnx", "export", "mobilenet_v2", str(dst)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "4 taps feed A^b" in proc.stdout
    saved = onnx.load(str(dst))
    outputs = [o.name for o in saved.graph.output]
    assert outputs[0] == "logits" and "pfv_activation" in outputs and len([o for o in outputs if o.startswith("pfv_map_")]) == 4


def test_benchmark_smoke_run_writes_json(tmp_path):
    path = tmp_path / "bench.json"
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--json", str(path)], cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(path.read_text())
    assert {r["model"] for r in data["results"]} == {"mobilenet_v2", "vgg16 (random)"}
    assert all(r["ratio"] > 0 and r["bare_s"] > 0 for r in data["results"])
