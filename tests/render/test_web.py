"""``pfv-onnx web``: the static page runs the exported model with onnxruntime-web in headless Chromium, on the
sample photos, and draws what the Python side computes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

from helpers import browser, corpus
from helpers.cli import run_cli
import numpy as np
import onnx
import pytest

from pfv_onnx import PFV, export
from pfv_onnx.images import bundled
from pfv_onnx.analyses.in_graph import PICTURE_KEY
from pfv_onnx.images.preprocess import fit_image, load_image
from pfv_onnx.render.images import to_uint8

# onnxruntime-web's tarball is fetched from the npm registry once and kept with pytest's cache.
CACHE = Path(__file__).resolve().parents[2] / ".pytest_cache" / "pfv-onnx"
SAMPLES = [bundled.sample_image(stem) for stem in ("chelsea", "coffee", "dog")]
DONE = """(() => {
  const status = document.getElementById("status");
  if (!status || !(status.textContent.startsWith("done") || status.className === "error")) return null;
  return {status: status.textContent, figures: [...document.querySelectorAll("figure")].map((f) =>
    ({name: f.dataset.name, input: f.dataset.input, picture: f.dataset.picture, caption: f.querySelector("figcaption").textContent}))};
})()"""


def web(*args: str) -> subprocess.CompletedProcess:
    return run_cli("web", *args, env={"PFV_ONNX_CACHE": str(CACHE)})


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, fitted_pfv):
    folder = tmp_path_factory.mktemp("fitted")
    return fitted_pfv, fitted_pfv.save_basis(folder / "basis.npz")


def drawn_on_the_page(tmp_path, model, pfv, size: tuple[int, int], **screenshot) -> tuple[dict, object]:
    """Run ``pfv-onnx web`` on the exported ``model`` and open the page on the samples: it feeds the model the
    pixels the Python side does, and draws ``pfv``'s picture of each within one level. Returns what the page
    showed and the Python side's result."""
    done = web(str(model), "--out", str(tmp_path / "page"), "--samples", *map(str, SAMPLES))
    assert done.returncode == 0, done.stderr
    result = browser.evaluate(tmp_path / "page" / "index.html", tmp_path / "profile", DONE, **screenshot)
    assert result["status"].startswith("done: 3 photos"), result["status"]
    pictures = pfv.transform(SAMPLES)
    for figure in result["figures"]:
        i = [p.name for p in SAMPLES].index(figure["name"])
        fed = np.frombuffer(base64.b64decode(figure["input"]), np.uint8).reshape(*size, 3)
        drawn = np.frombuffer(base64.b64decode(figure["picture"]), np.uint8).reshape(*size, 3)
        np.testing.assert_array_equal(fed, fit_image(load_image(SAMPLES[i]), size))
        assert np.abs(drawn.astype(int) - to_uint8(pictures.rgb[i]).astype(int)).max() <= 1
    assert len(result["figures"]) == 3
    return result, pictures


@pytest.mark.parametrize("uint8", [False, True], ids=["float32", "uint8"])
def test_the_page_draws_the_python_picture(tmp_path, fitted, uint8):
    pfv, basis = fitted
    model = tmp_path / "mobilenet_v2.pfv.onnx"
    export("mobilenet_v2", model, basis=basis, uint8=uint8)
    result, pictures = drawn_on_the_page(tmp_path, model, pfv, (224, 224), screenshot=tmp_path / "page.png")
    names = pfv.featurizer.class_names_for(1000)
    for figure in result["figures"]:
        i = [p.name for p in SAMPLES].index(figure["name"])
        assert names[int(pictures.logits[i].argmax())] in figure["caption"]


def test_a_model_without_a_picture_or_a_photo_a_browser_cannot_show_is_refused(tmp_path, fitted):
    done = web(str(bundled.model_path()), "--out", str(tmp_path / "page"))
    assert done.returncode == 2 and "has no PFV picture output" in done.stderr and len(done.stderr.splitlines()) == 1
    model = tmp_path / "m.onnx"
    export("mobilenet_v2", model, basis=fitted[1])
    photo = tmp_path / "photo.ppm"
    load_image(SAMPLES[0]).save(photo)
    done = web(str(model), "--out", str(tmp_path / "page"), "--samples", str(photo))
    assert done.returncode == 2 and "a browser shows" in done.stderr
    assert not (tmp_path / "page").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        # A record of uint8 (B, H, W, 3) on the float (B, 3, H, W) picture drew a black picture, "done".
        ({"layout": "NHWC"}, "says its picture is (B, H, W, 3) uint8 at 224 x 224, but output 'pfv_rgb' is float (?, 3, 224, 224)"),
        # bool("no") is True: the page said "hierarchical".
        ({"hierarchical": "no"}, "metadata is unreadable (hierarchical is 'no', not a bool)"),
    ],
    ids=["layout", "hierarchical-text"],
)
def test_a_damaged_picture_record_is_refused_before_anything_is_written(tmp_path, fitted, change, message):
    model = tmp_path / "m.onnx"
    export("mobilenet_v2", model, basis=fitted[1])
    exported = onnx.load(str(model))
    record = next(p for p in exported.metadata_props if p.key == PICTURE_KEY)
    record.value = json.dumps({**json.loads(record.value), **change})
    onnx.save(exported, str(model))
    done = web(str(model), "--out", str(tmp_path / "page"))
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert not (tmp_path / "page").exists()
    # pfv-onnx inspect prints the record: it reads it through the same check.
    shown = run_cli("inspect", str(model))
    assert shown.returncode == 2 and message in shown.stderr and len(shown.stderr.splitlines()) == 1, shown.stderr


def test_names_are_text_on_the_page(tmp_path, fitted):
    """A photo named like markup is shown as its name, and runs like any other."""
    model = tmp_path / "m.onnx"
    export("mobilenet_v2", model, basis=fitted[1])
    odd = tmp_path / '<img src=x onerror="document.title=1">.png'
    odd.write_bytes(SAMPLES[0].read_bytes())
    assert web(str(model), "--out", str(tmp_path / "page"), "--samples", str(odd)).returncode == 0
    result = browser.evaluate(tmp_path / "page" / "index.html", tmp_path / "profile", DONE.replace("return {status", "return {title: document.title, images: document.images.length, status"))
    assert result["status"].startswith("done: 1 photo") and result["figures"][0]["name"] == odd.name
    assert result["title"] != "1" and result["images"] == 0 and result["figures"][0]["caption"].startswith(odd.name)


def test_only_the_pinned_onnxruntime_web_is_taken(tmp_path, fitted):
    _, basis = fitted
    model = tmp_path / "m.onnx"
    export("mobilenet_v2", model, basis=basis)
    fake = tmp_path / "onnxruntime-web.tgz"
    fake.write_bytes(b"\x1f\x8b not the package")
    done = web(str(model), "--out", str(tmp_path / "page"), "--ort-web", str(fake))
    assert done.returncode == 2 and "SHA-512 differs" in done.stderr
    assert not (tmp_path / "page").exists()
    # Read only when it is a regular file, and never past the limit: no wait on a FIFO, no endless read.
    os.mkfifo(tmp_path / "fifo.tgz")
    (tmp_path / "zero.tgz").symlink_to("/dev/zero")
    for name in ("fifo.tgz", "zero.tgz"):
        done = web(str(model), "--out", str(tmp_path / "page"), "--ort-web", str(tmp_path / name))
        assert done.returncode == 2 and "is not a regular file" in done.stderr and len(done.stderr.strip().splitlines()) == 1, name
        assert not (tmp_path / "page").exists()
    # The same for a sample photo the page inlines, and one past the limit (a sparse file).
    (tmp_path / "zero.jpg").symlink_to("/dev/zero")
    with open(tmp_path / "huge.jpg", "wb") as f:
        f.write(SAMPLES[0].read_bytes())
        f.truncate(33 * 2**20)
    for name, message in (("zero.jpg", "is not a regular file"), ("huge.jpg", "too large for a sample photo")):
        done = web(str(model), "--out", str(tmp_path / "page"), "--samples", str(tmp_path / name))
        assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, name
        assert not (tmp_path / "page").exists()


def test_the_page_draws_a_transformers_picture(tmp_path):
    """A DeiT (class and distillation tokens, an 8 x 8 grid of patch tokens) exported with a basis: the page
    runs it in the browser and draws what the Python side computes."""
    source = tmp_path / "deit.onnx"
    onnx.save(corpus.load("timm_deit_distilled"), str(source))
    pfv = PFV(source, preset="imagenet").fit(bundled.sample_images())
    model = tmp_path / "deit.pfv.onnx"
    export(source, model, basis=pfv.save_basis(tmp_path / "basis.npz"), preset="imagenet")
    _, pictures = drawn_on_the_page(tmp_path, model, pfv, (64, 64))
    assert pictures.rgb.std() > 0.05
