"""What the colours mean and what a user meets first: the report's key, notebooks, folder-per-class
datasets, models that do not say their preset or labels, and options that are never silently dropped."""

from __future__ import annotations

import json
import re
import shutil
import warnings

import numpy as np
import onnx
import pytest
from PIL import Image

from helpers import browser, corpus
from pfv_onnx import PFV, PFVError, export
from pfv_onnx.images import bundled
from pfv_onnx.cli import main
from pfv_onnx.errors import FolderWarning, PresetWarning
from pfv_onnx.images.preprocess import find_images, stratified
from pfv_onnx.render import page

DATASET = bundled.sample_images()[0].parent / "gcompris5"


# ---- the report -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def five_components(tmp_path_factory):
    out = tmp_path_factory.mktemp("five")
    photos = bundled.sample_images()
    assert main(["explain", "mobilenet_v2", *map(str, photos[:6]), "--out", str(out), "--components", "5", "--batch", "3", "--quiet"]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_every_component_is_shown_and_batches_are_numbered_alike(five_components, tmp_path):
    out, summary = five_components
    assert [b["number"] for b in summary["batches"]] == [1, 2] and {i["batch"] for i in summary["images"]} == {1, 2}
    assert [b["mosaic"] for b in summary["batches"]] == ["mosaics/batch_1.png", "mosaics/batch_2.png"]
    assert len(summary["batches"][0]["explained_variance_ratio"]) == 5
    with Image.open(out / summary["images"][0]["files"]["components"]) as picture:
        components = np.asarray(picture.convert("RGB"))
    assert components.shape == (224, 3 * 224, 3)  # components 1-3 as RGB, then 4 and 5 in grey beside them
    for panel in (components[:, 224:448], components[:, 448:]):
        assert panel.std() > 5 and np.array_equal(panel[..., 0], panel[..., 1])
    html = browser.dom(out / "index.html", tmp_path / "profile")
    assert 'data-broken-images="0"' in html
    assert "component 4 (no colour" in html and "component 5 (no colour" in html
    assert "Batch 1: 3 images" in html and "Batch 2: 3 images" in html and "6 images in 2 batches" in html


def test_the_report_explains_its_colours(five_components, tmp_path):
    out, summary = five_components
    html = browser.dom(out / "index.html", tmp_path / "profile")
    for words in ("yellow = 1 and 2", "magenta = 1 and 3", "cyan = 2 and 3", "white = all three", "neutral grey"):
        assert words in html
    assert html.count('class="colourbar"') == 6  # one colour bar under each activation picture
    assert "Component 1, strongest in this batch" in html and "more red" in html and "less red" in html
    details = re.search(r"<details>(.*?)</details>", html, re.S)
    assert details and "time: forward" in details.group(1) and summary["final"] in details.group(1)
    assert "time: forward" not in html.replace(details.group(0), "")  # timings only in the collapsed part
    strongest = summary["batches"][0]["strongest"]
    assert len(strongest) == 5 and all(len(s["positive"]) == 3 and set(s["positive"]) <= set(summary["batches"][0]["images"]) for s in strongest)


def test_mosaic_is_labelled_and_readable_at_64_images(tmp_path):
    photos = bundled.sample_images()
    items = [np.asarray(Image.open(photos[i % len(photos)]).convert("RGB").resize((160, 160))) for i in range(64)]
    result = PFV()(items)
    summary = result.save(tmp_path / "big")
    with Image.open(tmp_path / "big" / summary["batches"][0]["mosaic"]) as picture:
        width, height = picture.size
    tile = (width - 5 * 4) // 6  # six to a row: a row fits the report's width
    assert width <= 1400 and tile == 224 and height > 11 * 2 * tile  # eleven rows of input over PFV, plus captions


# ---- notebooks --------------------------------------------------------------------------------------


def test_compact_repr_and_inline_html(mobilenet, tmp_path):
    photos = bundled.sample_images()
    result = mobilenet([photos[i % len(photos)] for i in range(16)])
    text, pfv_text = repr(result), repr(mobilenet)
    assert len(text) < 1000 and "16 images" in text and "top class" in text and "%" in text
    assert len(pfv_text) < 1000 and "mobilenet_v2.onnx" in pfv_text and "224 x 224" in pfv_text
    html = result._repr_html_()
    assert len(html.encode()) < 2 * 2**20 and html.count("<img") == 32
    notebook = tmp_path / "notebook.html"
    notebook.write_text(page("notebook", [html], []))  # with the page's check of every picture
    dom = browser.dom(notebook, tmp_path / "profile")
    assert 'data-broken-images="0"' in dom
    assert dom.count("data:image/png;base64") == 16 and dom.count("data:image/jpeg;base64") == 16
    pictures = result.to_pil()
    assert len(pictures) == 16 and pictures[0].size == (224, 224) and pictures[0].mode == "RGB"
    assert np.array_equal(np.asarray(pictures[0]), (np.clip(result.rgb[0], 0, 1) * 255 + 0.5).astype(np.uint8))
    with pytest.raises(PFVError, match="unknown picture kind"):
        result.to_pil("nonsense")


def test_pil_images_keep_their_file_names(mobilenet):
    with Image.open(bundled.sample_image("dog")) as dog, Image.open(bundled.sample_image("chelsea")) as cat:
        result = mobilenet([dog, cat, np.zeros((50, 50, 3), np.uint8)])
    assert result.names == ["dog", "chelsea", "image_2"]


def test_save_refuses_a_used_folder_and_keeps_names_apart(mobilenet, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    shutil.copy(bundled.sample_image("dog"), a / "x.jpg")
    shutil.copy(bundled.sample_image("chelsea"), b / "x.jpg")
    result = mobilenet([a / "x.jpg", b / "x.jpg"])
    summary = result.save(tmp_path / "out")
    assert [i["name"] for i in summary["images"]] == ["x", "x_2"]
    assert (tmp_path / "out" / "images" / "x_pfv.png").exists() and (tmp_path / "out" / "images" / "x_2_pfv.png").exists()
    with pytest.raises(PFVError, match="not empty"):
        result.save(tmp_path / "out")
    assert result.save(tmp_path / "out", overwrite=True)["images"][1]["name"] == "x_2"


# ---- folder-per-class datasets ----------------------------------------------------------------------


def test_class_roots_are_found_recursively_and_stratified(tmp_path):
    root = tmp_path / "data"
    for name, count in (("cats", 6), ("dogs", 3)):
        (root / name / "deeper").mkdir(parents=True)
        for i in range(count):
            shutil.copy(bundled.sample_image("chelsea"), root / name / ("deeper" if i % 2 else ".") / f"{name}{i}.jpg")
    (root / ".hidden").mkdir()
    shutil.copy(bundled.sample_image("dog"), root / ".hidden" / "skip.jpg")
    files = find_images([root])
    assert len(files) == 9 and {f.label for f in files} == {"cats", "dogs"}
    order = [f.label for f in stratified(files)]
    for start in range(0, 9, 3):  # every stretch of three holds both classes, two cats to a dog
        assert order[start : start + 3].count("dogs") == 1


def test_a_folder_of_images_and_class_folders_reads_its_images_and_says_so(tmp_path):
    root = tmp_path / "mixed"
    (root / "class").mkdir(parents=True)
    shutil.copy(bundled.sample_image("dog"), root / "cover.jpg")
    shutil.copy(bundled.sample_image("chelsea"), root / "class" / "cat.jpg")
    with pytest.warns(FolderWarning, match="subfolders were not read"):
        assert [f.path.name for f in find_images([root])] == ["cover.jpg"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert [f.label for f in find_images([root / "class", root / "cover.jpg"])] == [None, None]


def test_class_and_file_names_reach_the_page_escaped(tmp_path):
    root = tmp_path / "data"
    for name, photo in (("<b>evil", "dog"), ("a&b", "chelsea")):
        (root / name).mkdir(parents=True)
        for i in range(2):
            shutil.copy(bundled.sample_image(photo), root / name / f'"><i>{i}.jpg')
    out = tmp_path / "out"
    assert main(["explain", "mobilenet_v2", str(root), "--out", str(out), "--quiet"]) == 0
    html = (out / "index.html").read_text()
    assert "&lt;b&gt;evil" in html and "a&amp;b" in html and "<b>evil" not in html and '"><i>' not in html
    assert 'data-broken-images="0"' in browser.dom(out / "index.html", tmp_path / "profile")


def test_explain_and_fit_take_a_class_root(tmp_path):
    out = tmp_path / "explained"
    assert main(["explain", "mobilenet_v2", str(DATASET), "--out", str(out), "--batch", "20", "--quiet", "--pictures", "pfv"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["images"]) == 80 and len(summary["batches"]) == 4
    for batch in summary["batches"]:  # stratified: every batch holds four images of each class
        classes = [i["class"] for i in summary["images"] if i["batch"] == batch["number"]]
        assert sorted(set(classes)) == ["animals", "fishes", "monuments", "renewable", "tools"] and classes.count("tools") == 4
    assert "from 5 classes (animals, fishes, monuments, renewable, tools)" in (out / "index.html").read_text()
    basis = tmp_path / "basis.npz"
    assert main(["fit", "mobilenet_v2", str(DATASET), "--out", str(basis), "--quiet"]) == 0
    assert PFV(basis=basis).basis.images == 80


# ---- own models: presets and labels -----------------------------------------------------------------


def test_a_model_without_a_preset_warns_once(capsys, tmp_path):
    keras = tmp_path / "keras.onnx"  # a Keras export, which names no preset
    onnx.save(corpus.load("keras_mobilenet_v2_slim"), keras)
    with pytest.warns(PresetWarning, match="does not name its pixel normalisation"):
        PFV(str(keras))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PFV(str(keras), preset="tf")  # named: no warning
        PFV()  # the bundled models say theirs
    assert main(["explain", str(keras), str(bundled.sample_image("dog")), str(bundled.sample_image("chelsea")),
                 "--out", str(tmp_path / "out"), "--quiet"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pfv-onnx: warning:") and "--preset" in err[0]


def test_labels_only_when_the_model_or_the_user_says(tmp_path):
    plain = onnx.load(bundled.model_path())
    del plain.metadata_props[:]
    path = tmp_path / "plain.onnx"
    onnx.save(plain, path)
    dog = bundled.sample_image("dog")
    with pytest.warns(PresetWarning):
        result = PFV(str(path))([dog, dog])
    assert result.labels is None and result.top_k(1)[0][0][1] is None  # 1000 outputs alone do not make ImageNet
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"class {k}" for k in range(1000)) + "\n")
    assert PFV(str(path), preset="imagenet", labels=str(names))([dog, dog]).labels[7] == "class 7"
    names.write_text("a\nb\nc\n")
    with pytest.raises(PFVError, match="are 3, the model gives 1000"):  # refused as the model opens
        PFV(str(path), preset="imagenet", labels=str(names))
    tagged = tmp_path / "tagged.onnx"
    export(str(path), tagged, preset="imagenet", labels="imagenet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = PFV(str(tagged))
    assert again.featurizer.preset.name == "imagenet" and again.featurizer.labels_source == "model metadata"
    assert again([dog, dog]).labels == bundled.imagenet_labels()


def test_inspect_lists_what_pfv_sees(capsys):
    assert main(["inspect", "mobilenet_v2"]) == 0
    out = capsys.readouterr().out
    pfv = PFV(weighting="paper")
    for words in ("input: image, NCHW, 3 channels, 224 x 224", "preset: imagenet (model metadata)", "class names: 1000 names from model metadata",
                  f"final layer F_N: {pfv.final}, 1280 channels, 7 x 7", "linear head after F_N: 1000 classes", *pfv.taps):
        assert words in out
    assert "weighting focus reads: F_N, " + pfv.taps[-1] in out
    assert main(["inspect", "mobilenet_v2", "--all"]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  /")]
    assert len(listed) > 25 and any(pfv.final in line for line in listed)


# ---- options never silently dropped -----------------------------------------------------------------


def test_a_basis_refuses_conflicting_method_options(tmp_path, capsys, basis_file):
    basis = basis_file
    with pytest.raises(PFVError, match="n_components is 5 here but 3 in the basis"):
        PFV(basis=basis, n_components=5)
    assert PFV(basis=basis, n_components=3).options.n_components == 3  # agreeing is fine
    with pytest.raises(PFVError, match="weighting is 'paper' here but 'focus'"):
        PFV(basis=basis, weighting="paper")
    paper = tmp_path / "paper.npz"
    PFV(weighting="paper").fit(bundled.sample_images()[:4]).save_basis(paper)
    with pytest.raises(PFVError, match="weighting is 'focus' here but 'paper'"):  # given, though it is the default
        PFV(basis=paper, weighting="focus")
    code = main(["explain", "mobilenet_v2", str(bundled.sample_image("dog")), "--basis", str(basis), "--components", "5", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--components is 5 here but 3 in the basis" in err[0]
    assert not (tmp_path / "o").exists()
    code = main(["explain", "mobilenet_v2", str(bundled.sample_image("dog")), "--basis", str(paper), "--weighting", "focus", "--out", str(tmp_path / "o")])
    assert code == 2 and "--weighting is 'focus' here but 'paper' in the basis" in capsys.readouterr().err
