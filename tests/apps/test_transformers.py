"""Every command on vision transformers (real exports with random weights, tests/corpus/): a DeiT with class and
distillation tokens, and a Swin whose last stage is a channels-last map. Where the maps point is not measured
here: random weights point nowhere."""

from __future__ import annotations

import json

from helpers import corpus
import numpy as np
import onnx
import pytest

from pfv_onnx import PFV
from pfv_onnx.cli import main
from pfv_onnx.graph import read_tapped_outputs
from pfv_onnx.images import bundled

PHOTOS = [str(p) for p in bundled.sample_images()[:4]]
DATASET = bundled.sample_images()[0].parent / "gcompris5"
PRESET = ["--preset", "imagenet", "--quiet"]


@pytest.fixture(scope="module", params=["timm_deit_distilled", "timm_swin"])
def model(request, tmp_path_factory):
    path = tmp_path_factory.mktemp("transformer") / f"{request.param}.onnx"
    onnx.save(corpus.load(request.param), str(path))
    return path


def test_explain_fit_and_export_with_a_basis(model, tmp_path):
    assert main(["explain", str(model), *PHOTOS, "--out", str(tmp_path / "relative"), *PRESET]) == 0
    summary = json.loads((tmp_path / "relative" / "summary.json").read_text())
    assert summary["final"] == "pfv_token_grid" and len(summary["images"]) == 4
    assert main(["fit", str(model), *PHOTOS, "--out", str(tmp_path / "basis.npz"), *PRESET]) == 0
    assert main(["explain", str(model), *PHOTOS, "--basis", str(tmp_path / "basis.npz"), "--out", str(tmp_path / "fixed"), *PRESET]) == 0
    exported = tmp_path / "model.pfv.onnx"
    assert main(["export", str(model), str(exported), "--basis", str(tmp_path / "basis.npz"), "--preset", "imagenet", "--quiet"]) == 0
    outputs = read_tapped_outputs(onnx.load(str(exported)))
    assert outputs is not None and outputs.tokens and outputs.picture is not None
    # The exported model is read as a token grid again: the same pictures as the model it came from.
    again = PFV(exported, basis=tmp_path / "basis.npz").transform(PHOTOS)
    first = PFV(model, basis=tmp_path / "basis.npz", preset="imagenet").transform(PHOTOS)
    np.testing.assert_allclose(again.rgb, first.rgb, atol=1e-5)
    assert main(["web", str(exported), "--out", str(tmp_path / "page"), "--quiet"]) == 0
    assert (tmp_path / "page" / "index.html").is_file()


def test_atlas(model, tmp_path):
    assert main(["atlas", str(model), str(DATASET), "--out", str(tmp_path / "atlas"), *PRESET]) == 0
    summary = json.loads((tmp_path / "atlas" / "summary.json").read_text())
    assert len(summary["components"]) == 3 and all(side["images"] for c in summary["components"] for side in c["sides"])


def test_the_applications(model, tmp_path):
    image = sorted((DATASET / "animals").iterdir())[0]
    argv = ["--image", str(image), "--true-class", str(DATASET / "animals"), "--predicted-class", str(DATASET / "tools")]
    assert main(["debug", str(model), *argv, "--out", str(tmp_path / "debug"), *PRESET]) == 0
    assert main(["survey", str(model), str(DATASET), "--out", str(tmp_path / "survey"), *PRESET]) == 0
    # the attention and MLP weights are re-initialised, top block first
    code = main(["sanity", str(model), *PHOTOS[:2], "--steps", "2", "--out", str(tmp_path / "sanity"), *PRESET])
    sanity = json.loads((tmp_path / "sanity" / "summary.json").read_text())
    assert code == (0 if sanity["passed"] else 1) and sanity["layers"] > 8 and len(sanity["cascade"]) == 2


def test_evaluate(model, tmp_path, capsys):
    """The numbers are computed; with random weights the run is not trustworthy, and says so (exit 1)."""
    code = main(["evaluate", str(model), "--count", "8", "--no-faithfulness", "--out", str(tmp_path / "evaluate"), *PRESET])
    summary = json.loads((tmp_path / "evaluate" / "summary.json").read_text())
    assert all(0 <= entry["auc"] <= 1 for entry in summary["maps"].values())
    assert code in (0, 1) and (code == 0 or "not trustworthy" in capsys.readouterr().err)


def test_inspect_shows_the_grid_the_tokens_left_out_and_the_blocks(capsys, tmp_path):
    saved = tmp_path / "deit.onnx"
    onnx.save(corpus.load("timm_deit_distilled"), str(saved))
    assert main(["inspect", str(saved), "--preset", "imagenet"]) == 0
    out = capsys.readouterr().out
    assert "final layer F_N: pfv_token_grid, 64 channels, 8 x 8" in out
    assert "token grid: 8 x 8 patches: tokens 2 to 65 of /norm/LayerNormalization_output_0 (66 tokens of 64 channels); 2 other tokens" in out
    assert "token sequences --final and --layers also accept" in out and "/blocks/blocks.1/Add_1_output_0" in out


def test_export_with_statistics_is_refused_for_a_token_grid(model, tmp_path, capsys):
    out = tmp_path / "statistics.onnx"
    assert main(["export", str(model), str(out), "--statistics", "--preset", "imagenet"]) == 2
    assert "--statistics are not computed in the graph for a transformer's token grid" in capsys.readouterr().err
    assert not out.exists()
