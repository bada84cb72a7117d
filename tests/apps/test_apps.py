"""The paper's applications as commands: debug, survey, sanity, on the bundled model and shipped photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from helpers import browser
from pfv_onnx.images import bundled
from pfv_onnx.analyses.debug import region_of
from pfv_onnx.cli import main
from pfv_onnx.core.metrics import colour_distribution, foreground, ssim
from pfv_onnx.core.linear_probe import fit_probe, stratified_split

GCOMPRIS = bundled.sample_images()[0].parent / "gcompris5"
CAT = GCOMPRIS / "animals" / "explore_farm_animals__cat.webp"
TRUE = [GCOMPRIS / "animals" / f"explore_world_animals__{n}.webp" for n in ("bison", "giraffe", "kangaroo")]
OTHER = sorted((GCOMPRIS / "tools").glob("*.webp"))[:3]


def test_the_shipped_dataset():
    classes = sorted(p.name for p in GCOMPRIS.iterdir() if p.is_dir())
    assert classes == ["animals", "fishes", "monuments", "renewable", "tools"]
    attribution = (GCOMPRIS / "ATTRIBUTION.md").read_text()
    for folder in classes:
        files = sorted((GCOMPRIS / folder).glob("*.webp"))
        assert len(files) == 16
        for f in files:
            line = next(l for l in attribution.splitlines() if f"| {folder}/{f.name} |" in l)
            assert "public domain" in line.lower() or "cc0" in line.lower()
            with Image.open(f) as image:
                assert max(image.size) <= 320


def covered_cat(tmp_path, quarter: str) -> Path:
    """The cat photo with one quarter (the one its head is in, or another) painted grey."""
    pixels = np.asarray(Image.open(CAT).convert("RGB")).copy()
    h, w = pixels.shape[:2]
    rows = slice(0, h // 2) if quarter.startswith("top") else slice(h // 2, h)
    cols = slice(0, w // 2) if quarter.endswith("left") else slice(w // 2, w)
    pixels[rows, cols] = 128
    path = tmp_path / f"cat_{quarter.replace(' ', '_')}.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.mark.parametrize("quarter", ["top left", "top right"])
def test_debug_names_the_covered_region(tmp_path, quarter):
    image = covered_cat(tmp_path, quarter)
    out = tmp_path / "debug"
    args = ["debug", "mobilenet_v2", "--image", str(image), "--true-class", *map(str, TRUE), "--predicted-class", *map(str, OTHER), "--out", str(out)]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    lacking = [f for f in summary["classes"]["true"]["findings"] if f["verdict"] == "lacks"]
    assert any(f["region"] == quarter for f in lacking), summary["classes"]["true"]["findings"]
    assert any(quarter in line for line in summary["verdict"])
    for entry in summary["images"]:
        assert sum(entry["distribution"]) == pytest.approx(1.0, abs=1e-3)  # rounded to 4 places
    for name in ("panel.png", "where_true.png", "where_predicted.png"):
        Image.open(out / name).load()
    assert 'data-broken-images="0"' in browser.dom(out / "index.html", tmp_path / "profile")


def test_survey_with_the_probe(tmp_path):
    out = tmp_path / "survey"
    assert main(["survey", "mobilenet_v2", str(GCOMPRIS), "--out", str(out), "--per-class", "3", "--probe"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["classes"] == {name: 16 for name in ("animals", "fishes", "monuments", "renewable", "tools")}
    assert len(summary["sample"]) == 15
    sim = np.array(summary["similarity"])
    assert np.allclose(sim, sim.T) and np.allclose(np.diag(sim), 1) and sim.min() >= 0 and sim.max() <= 1
    assert len(summary["predicted_confusions"]) == 3
    probe = summary["probe"]
    assert probe["test_images"] == 25 and probe["train_images"] == 55
    assert probe["accuracy"] >= 0.7  # measured 0.84 (README); chance is 0.2
    assert np.array(probe["confusion"]).sum() == 25
    assert -1 <= probe["similarity_vs_confusion"] <= 1
    for name in ("grid.png", "class_colours.png", "similarity.png", "confusion.png"):
        Image.open(out / name).load()


def test_sanity_passes_for_the_trained_model(tmp_path):
    photos = [bundled.sample_image(s) for s in ("chelsea", "dog", "person", "horses", "giraffe")]
    out = tmp_path / "sanity"
    assert main(["sanity", "mobilenet_v2", *map(str, photos), "--out", str(out), "--steps", "6"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    cascade = summary["cascade"]
    assert cascade[0]["randomised"] == 1 and cascade[0]["spearman"] == pytest.approx(1.0)  # the head alone: PFV unchanged
    assert cascade[-1]["randomised"] == summary["layers"] == 53
    assert summary["all_at_once"]["spearman"] < 0.3 and cascade[-1]["spearman"] < 0.3
    assert summary["cascade_trend"] <= -0.5 and summary["passed"]
    for name in ("curve.png", "steps.png"):
        Image.open(out / name).load()


def test_foreground_and_distribution():
    activation = np.random.default_rng(0).random((64, 64))
    activation[:4] = 10  # a bright border, as zero padding gives
    mask = foreground(activation)
    assert abs(mask.mean() - 0.3) < 0.01 and not mask[:4].any()
    rgb = np.random.default_rng(1).random((64, 64, 3))
    shares = colour_distribution(rgb, mask)
    assert shares.sum() == pytest.approx(1.0) and np.allclose(shares, rgb[mask].sum(0) / rgb[mask].sum())
    assert np.allclose(colour_distribution(np.zeros((4, 4, 3)), np.ones((4, 4), bool)), 1 / 3)


def test_ssim_against_a_direct_formula():
    rng = np.random.default_rng(0)
    a = rng.random((40, 50, 3))
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)

    def direct(x, y):
        blur = lambda v: gaussian_filter(v, 1.5, truncate=3.5, mode="reflect")  # noqa: E731  (11 x 11 window)
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        c1, c2 = 0.01**2, 0.03**2
        return (((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))).mean()

    expected = np.mean([direct(a[..., c], b[..., c]) for c in range(3)])
    assert ssim(a, b) == pytest.approx(expected, abs=1e-6)
    assert ssim(a, a) == pytest.approx(1.0) and ssim(a, b) < 0.95


def test_probe_and_split():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 20)) * 3
    labels = np.repeat(np.arange(4), 15)
    X = centres[labels] + rng.standard_normal((60, 20))
    train, test = stratified_split(labels, 1 / 3, seed=0)
    assert len(test) == 20 and set(np.bincount(labels[test])) == {5} and not set(train) & set(test)
    model = fit_probe(X[train], labels[train], 4)
    assert (model.predict(X[test]) == labels[test]).mean() == 1.0
    assert np.allclose(model.probabilities(X[test]).sum(axis=1), 1)


def test_region_names():
    mask = np.zeros((90, 90), bool)
    mask[5:20, 70:85] = True
    assert region_of(mask) == "top right"
    mask[:] = False
    mask[40:50, 40:50] = True
    assert region_of(mask) == "centre"
