"""Hostile images, odd models and interrupted runs: each gives a defined result or a clear one-line error."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from helpers import graphs
from pfv_onnx import PFV, Featurizer, ImageError, ModelError, PFVError, export, tap_model
from pfv_onnx.images import bundled
from pfv_onnx.apps import explain as explain_app
from pfv_onnx.cli import main
from pfv_onnx.graph import add_outputs
from pfv_onnx.images.preprocess import MAX_PIXELS, load_image
from pfv_onnx.runtime import Session


def photo(size=(48, 32)) -> Image.Image:
    """A small RGB test picture: red left half, blue right half."""
    array = np.zeros((size[1], size[0], 3), np.uint8)
    array[:, : size[0] // 2] = (220, 30, 30)
    array[:, size[0] // 2 :] = (30, 30, 220)
    return Image.fromarray(array)


def write_corpus(folder):
    """Broken and odd image files, each with its expected outcome: ``None`` (works) or a reason's words."""
    folder.mkdir(exist_ok=True)
    expected = {}

    def save(name, outcome, writer):
        writer(folder / name)
        expected[name] = outcome

    jpeg = io.BytesIO()
    photo((256, 256)).save(jpeg, format="JPEG")
    save("truncated.jpg", "cannot decode", lambda p: p.write_bytes(jpeg.getvalue()[: len(jpeg.getvalue()) // 2]))
    save("empty.jpg", "cannot decode", lambda p: p.write_bytes(b""))
    save("text.jpg", "cannot decode", lambda p: p.write_text("not a picture at all\n"))
    save("cmyk.jpg", None, lambda p: photo().convert("CMYK").save(p))
    gradient = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    save("sixteen_bit.png", None, lambda p: Image.fromarray(gradient).save(p))
    palette = photo().convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    save("palette_transparent.png", None, lambda p: palette.save(p, transparency=0))
    save("grey.png", None, lambda p: photo().convert("L").save(p))
    rgba = photo().convert("RGBA")
    rgba.putalpha(Image.new("L", rgba.size, 0))
    save("rgba_transparent.png", None, lambda p: rgba.save(p))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    save("rotated.jpg", None, lambda p: photo((60, 20)).save(p, exif=exif.tobytes()))
    save("one_pixel.png", None, lambda p: Image.new("RGB", (1, 1), (10, 200, 10)).save(p))
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    save("animated.gif", None, lambda p: frames[0].save(p, save_all=True, append_images=frames[1:], duration=50))
    save("pages.tiff", None, lambda p: frames[0].save(p, save_all=True, append_images=frames[1:]))
    save("picture.webp", None, lambda p: photo().save(p, format="WEBP"))
    side = int(np.sqrt(MAX_PIXELS)) + 10
    save("bomb.png", "over the limit", lambda p: Image.new("1", (side, side)).save(p))
    return expected


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return folder, write_corpus(folder)


def test_each_file_works_or_gives_its_reason(corpus):
    folder, expected = corpus
    for name, outcome in expected.items():
        if outcome is None:
            image = load_image(folder / name)
            assert image.mode == "RGB" and image.width >= 1
        else:
            with pytest.raises(ImageError, match=outcome) as info:
                load_image(folder / name)
            assert str(folder / name) in str(info.value) and "\n" not in str(info.value)


def test_decoded_content_is_right(corpus):
    folder, _ = corpus
    rotated = np.asarray(load_image(folder / "rotated.jpg"))
    assert rotated.shape[:2] == (60, 20)  # EXIF orientation applied: portrait
    assert rotated[5, 10, 0] > 150 and rotated[-5, 10, 2] > 150  # red on top, blue below after the turn
    assert np.asarray(load_image(folder / "animated.gif"))[0, 0].tolist() == [255, 0, 0]  # first frame
    assert np.asarray(load_image(folder / "pages.tiff"))[0, 0].tolist() == [255, 0, 0]  # first page
    grey16 = np.asarray(load_image(folder / "sixteen_bit.png"))[..., 0]
    assert grey16.min() == 0 and grey16.max() >= 250 and len(np.unique(grey16)) > 200  # scaled, not clipped
    assert np.asarray(load_image(folder / "rgba_transparent.png")).min() == 255  # transparent shows white
    assert np.asarray(load_image(folder / "cmyk.jpg"))[10, 5, 0] > 150


def test_explain_skips_bad_files_and_finishes_the_rest(corpus, tmp_path):
    folder, expected = corpus
    out = tmp_path / "report"
    assert main(["explain", "mobilenet_v2", str(folder), "--out", str(out), "--quiet"]) == 1
    summary = json.loads((out / "summary.json").read_text())
    skipped = {os.path.basename(s["source"]): s["reason"] for s in summary["skipped"]}
    assert set(skipped) == {name for name, outcome in expected.items() if outcome}
    for name, reason in skipped.items():
        assert expected[name] in reason
    done = {image["name"] for image in summary["images"]}
    assert done == {os.path.splitext(name)[0] for name, outcome in expected.items() if outcome is None}
    for image in summary["images"]:
        picture = np.asarray(Image.open(out / image["files"]["pfv"]))
        assert picture.shape == (224, 224, 3)


def interrupt_second_batch(monkeypatch) -> None:
    """Ctrl-C during the forward pass of the second batch of a call to explain."""
    real_forward = Featurizer.forward
    calls = {"n": 0}

    def interrupted_forward(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(Featurizer, "forward", interrupted_forward)


@pytest.mark.parametrize("where", ["writing a file", "running a batch"])
def test_interrupted_run_leaves_whole_files_and_resumes(tmp_path, monkeypatch, where):
    photos = [str(p) for p in bundled.sample_images()]
    reference = tmp_path / "reference"
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(reference), "--batch", "3", "--quiet"]) == 0

    calls = {"n": 0}
    if where == "writing a file":
        # Half of the 20th file reaches the disk, then Ctrl-C (in a writer thread).
        real_write_bytes = Path.write_bytes

        def interrupted_write(self, data):
            calls["n"] += 1
            if calls["n"] == 20:
                real_write_bytes(self, data[: len(data) // 2])
                raise KeyboardInterrupt
            return real_write_bytes(self, data)

        monkeypatch.setattr(Path, "write_bytes", interrupted_write)
    else:
        interrupt_second_batch(monkeypatch)  # in the main thread, the first batch still being written
    out = tmp_path / "run"
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--quiet"]) == 130
    monkeypatch.undo()
    leftovers = [p for p in out.rglob("*") if p.is_file()]
    assert leftovers and not any(p.name.endswith(".tmp") for p in leftovers) and not (out / "summary.json").exists()
    for p in leftovers:
        if p.suffix == ".png":
            assert p.read_bytes() == (reference / p.relative_to(out)).read_bytes()  # whole, and right

    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--quiet"]) == 0
    assert not (out / ".pfv-run.jsonl").exists()
    for picture in reference.rglob("*.png"):
        assert (out / picture.relative_to(reference)).read_bytes() == picture.read_bytes()
    a = json.loads((reference / "summary.json").read_text())
    b = json.loads((out / "summary.json").read_text())
    assert a["images"] == b["images"] and a["batches"] == b["batches"]


def test_the_journal_grows_a_line_per_batch_and_survives_a_cut_last_line(tmp_path, monkeypatch):
    photos = [str(p) for p in bundled.sample_images()]
    out = tmp_path / "run"

    def interrupted_summary(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(explain_app, "write_summary", interrupted_summary)  # every batch done, no report yet
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--quiet"]) == 130
    monkeypatch.undo()
    journal = out / ".pfv-run.jsonl"
    lines = journal.read_text().splitlines()
    assert len(lines) == 4 and "key" in json.loads(lines[0]) and sorted(json.loads(x)["index"] for x in lines[1:]) == [0, 1, 2]
    kept = [lines[0]] + [x for x in lines[1:] if json.loads(x)["index"] == 0]
    journal.write_text("\n".join(kept) + '\n{"index": 1, "batch": {"ind')  # as if cut while recording batch 1
    (out / "images" / f"{Path(photos[4]).stem}_pfv.png").unlink()  # batch 1 is done again, so this comes back
    monkeypatch.setattr(explain_app, "write_summary", interrupted_summary)  # interrupted once more
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--quiet"]) == 130
    monkeypatch.undo()
    lines = journal.read_text().splitlines()  # the cut line is gone: what the resumed run added is kept
    assert len(lines) == 4 and sorted(json.loads(x)["index"] for x in lines[1:]) == [0, 1, 2]
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [b["number"] for b in summary["batches"]] == [1, 2, 3] and len(summary["images"]) == len(photos)
    assert (out / "images" / f"{Path(photos[4]).stem}_pfv.png").exists() and not journal.exists()


def test_resuming_with_other_options_is_refused(tmp_path, monkeypatch):
    photos = [str(p) for p in bundled.sample_images()]
    interrupt_second_batch(monkeypatch)
    out = tmp_path / "run"
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--quiet"]) == 130
    monkeypatch.undo()
    final = PFV().taps[-1]  # another final layer: another analysis
    proc_args = ["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--final", final, "--quiet"]
    assert main(proc_args) == 2
    assert main(proc_args + ["--overwrite"]) == 0


def test_pictures_option(tmp_path):
    photos = [str(p) for p in bundled.sample_images()[:3]]
    out = tmp_path / "two"
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--pictures", "pfv,overlay", "--quiet"]) == 0
    names = sorted(p.name for p in (out / "images").iterdir())
    assert names == sorted(f"{Path(p).stem}_{kind}.png" for p in photos for kind in ("pfv", "overlay"))
    summary = json.loads((out / "summary.json").read_text())
    assert all(set(image["files"]) == {"pfv", "overlay"} for image in summary["images"])
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(tmp_path / "bad"), "--pictures", "pfv,nope"]) == 2


def test_existing_outputs_are_not_overwritten(tmp_path):
    photo_path = str(bundled.sample_images()[0])
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(PFVError, match="is not empty"):
        from pfv_onnx.apps.explain import explain

        explain(PFV(), [photo_path], out, show_progress=False)
    assert main(["explain", "mobilenet_v2", photo_path, "--out", str(out), "--overwrite", "--quiet"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert main(["explain", "mobilenet_v2", photo_path, "--out", str(out), "--quiet"]) == 2  # a finished report


def test_model_with_external_weights(tmp_path):
    original = onnx.load(str(bundled.model_path()))
    folder = tmp_path / "external"
    folder.mkdir()
    path = folder / "model.onnx"
    onnx.save(original, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin")
    assert path.stat().st_size < 200_000  # the weights are beside it
    photos = bundled.sample_images()[:3]
    a, b = PFV(path)(photos), PFV()(photos)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    exported = tmp_path / "tapped.onnx"
    export(path, exported)
    assert (tmp_path / "tapped.onnx.data").stat().st_size > 10_000_000
    np.testing.assert_allclose(PFV(exported)(photos).rgb, b.rgb, atol=1e-5)
    (folder / "weights.bin").unlink()
    with pytest.raises(ModelError, match="weights.bin"):
        PFV(path)


def test_quantised_qdq_model(tmp_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    pfv = PFV()
    x = pfv.featurizer.load(bundled.sample_images()[:4]).inputs

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"image": x[i : i + 1]} for i in range(len(x))])

        def get_next(self):
            return next(self.items, None)

    path = tmp_path / "qdq.onnx"
    quantize_static(str(bundled.model_path()), str(path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    quantised = PFV(path, weighting="paper")  # every tap
    assert len(quantised.taps) == 4 and all(t.endswith("DequantizeLinear_Output") for t in quantised.taps)
    # The taps are summed from their 8-bit tensors (onnxruntime's fused quantised convolutions never make the
    # float ones), and the sums are the float channel sums.
    added = [n for n in quantised.featurizer.tapped.model.graph.node if n.name.startswith("pfv_map")]
    assert sum(n.op_type == "ConvInteger" for n in added) == 4 and not any(n.op_type == "Conv" for n in added)
    features = quantised.featurizer.forward(x, maps=True)
    floats = Session(add_outputs(onnx.load(str(path)), quantised.taps)).run(x, quantised.taps)
    for tap, summed in zip(quantised.taps, features.maps):
        np.testing.assert_allclose(summed, floats[tap].sum(axis=1), rtol=1e-5, atol=1e-4 * np.abs(summed).max())
    result = quantised(bundled.sample_images())
    assert np.isfinite(result.rgb).all()
    top = dict(zip(result.names, result.top_k(1)))
    assert top["coffee"][0][1] == "espresso"


def test_open_input_size(tmp_path):
    model, taps, final = graphs.dynamic_size()
    default = PFV(model)
    assert default.size == (224, 224)
    assert default(np.zeros((2, 3, 224, 224), np.float32) + np.random.default_rng(0).random((2, 3, 224, 224), np.float32)).rgb.shape == (2, 224, 224, 3)
    small = PFV(model, size=(64, 48))
    assert small(bundled.sample_images()[:2]).rgb.shape == (2, 64, 48, 3)
    assert export(model, tmp_path / "open.onnx").activation is None
    assert export(model, tmp_path / "fixed.onnx", size=(64, 64)).activation == "pfv_activation"
    fixed, _, _ = graphs.vgg_like()
    with pytest.raises(ModelError, match="cannot take"):
        PFV(fixed, size=(64, 64))


def test_control_flow_in_the_head():
    model, taps, final = graphs.control_flow_head()
    tapped = tap_model(model)
    assert list(tapped.outputs.taps) == taps and tapped.outputs.final == final
    x = np.random.default_rng(0).random((3, 3, 32, 32), np.float32)

    original = Session(model).run(x)
    np.testing.assert_allclose(Session(tapped.model).run(x, list(original))[model.graph.output[0].name], original[model.graph.output[0].name], rtol=1e-6)
    assert "If" not in {n.op_type for n in tap_model(model, keep_logits=False).model.graph.node}
    assert np.isfinite(PFV(model)(x).rgb).all()


def test_one_pixel_final_layer(tmp_path):
    model, taps, _ = graphs.resnet_like()
    pooled = next(n.output[0] for n in model.graph.node if n.op_type == "GlobalAveragePool")
    pfv = PFV(model, final=pooled)
    x = np.random.default_rng(0).random((4, 3, 32, 32), np.float32)
    with pytest.raises(PFVError, match="gives 2 pixel\\(s\\) for this batch .* fewer than the 3 components"):
        pfv(x[:2])
    result = pfv(x)  # four images: four pixels, enough for three components
    assert np.isfinite(result.rgb).all()


def test_constant_features_give_grey_not_nan():
    model, _, _ = graphs.zero_weights()
    result = PFV(model)(np.random.default_rng(0).random((3, 3, 32, 32), np.float32))
    assert np.isfinite(result.rgb).all() and np.all(result.rgb == 0.5)
    assert np.all(result.explained_variance_ratio == 0)
