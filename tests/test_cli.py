"""``pfv-onnx export``, the benchmark's smoke run, and usage errors of the command line, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from pfv_onnx.images import bundled
from pfv_onnx.cli import main
from pfv_onnx.options import MAX_THREADS, OptionError, Options

from helpers.cli import run_cli


def test_export_command(tmp_path):
    dst = tmp_path / "tapped.onnx"
    proc = run_cli("export", "mobilenet_v2", str(dst))
    assert proc.returncode == 0, proc.stderr
    assert "4 taps feed A^b" in proc.stdout
    saved = onnx.load(str(dst))
    outputs = [o.name for o in saved.graph.output]
    assert outputs[0] == "logits" and "pfv_activation" in outputs and len([o for o in outputs if o.startswith("pfv_map_")]) == 4


def test_benchmark_smoke_run_writes_json(tmp_path):
    path = tmp_path / "bench.json"
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "benchmarks", "--quick", "--throughput", "12", "--json", str(path)]
    proc = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(path.read_text())
    assert {r["model"] for r in data["results"]} == {"mobilenet_v2", "vgg16 (random)", "resnet50 (random)"}
    stages = {"forward", "decomposition", "weighting", "preprocess", "render", "png_encode"}
    for r in data["results"]:
        assert r["ratio"] > 0 and r["bare_s"] > 0 and r["bare_one_call_s"] > 0 and r["chunk"] == 8
        assert set(r["stages"]) == stages and r["provider"] == "CPU"
    assert [r["weighting"] for r in data["weightings"]] == ["focus", "paper", "final"]
    assert all(r["ratio"] > 0 and 0.5 <= r["map_auc"] <= 1 for r in data["weightings"])
    assert {r["model"] for r in data["solvers"]} == {"mobilenet_v2", "vgg16 (random)", "resnet50 (random)"}
    assert all(r["min_corr"] >= 0.999 for r in data["solvers"])
    # Folder runs: the plain loops and both explain modes ran on 12 photos, each in a process of its own.
    assert [(r["images"], r["mode"], r["pngs_written"]) for r in data["throughput"]] == [(12, "explain", 49), (12, "explain-pfv", 13)]
    for r in data["throughput"]:
        assert r["ratio"] > 0 and r["ratio_chunked"] > 0 and r["explain_peak_mb"] > 0


def test_too_many_threads_are_a_usage_error_for_every_command(tmp_path, capsys):
    """onnxruntime cannot take 100 billion threads (it ended in a TypeError, exit 3): refused as the option is made."""
    sample = str(bundled.sample_images()[0])
    for command in (["evaluate", "mobilenet_v2", "--count", "4", "--no-faithfulness"], ["explain", "mobilenet_v2", sample]):
        out = tmp_path / command[0]
        assert main([*command, "--out", str(out), "--threads", "100000000000", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"--threads must be a positive integer of at most {MAX_THREADS:,}, got 100000000000" in err and err.count("\n") == 1
        assert not out.exists()
    with pytest.raises(OptionError, match="threads must be a positive integer of at most"):
        Options(threads=MAX_THREADS + 1)
    assert Options(threads=MAX_THREADS).threads == MAX_THREADS


def test_the_gpu_check_says_what_it_does_and_refuses_a_provider_that_is_not_there(tmp_path):
    """benchmarks/gpu.sh without a step prints its steps (exit 2); the check refuses a provider onnxruntime
    does not have, with one line, before it measures anything."""
    root = Path(__file__).resolve().parents[1]
    usage = subprocess.run(["bash", str(root / "benchmarks" / "gpu.sh")], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "benchmarks/gpu.sh run [OUT]" in usage.stdout and "dry-run" in usage.stdout
    command = [sys.executable, "-m", "benchmarks.gpu_check", "--provider", "Nowhere", "--out", str(tmp_path / "out")]
    refused = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "NowhereExecutionProvider is not usable here" in refused.stderr
    assert not (tmp_path / "out").exists()
