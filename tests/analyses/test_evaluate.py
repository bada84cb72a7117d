"""``pfv-onnx evaluate`` on the bundled models and the shipped composites: the numbers, the report, the
weighting targets, and the controls that say when a run cannot be trusted."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from PIL import Image

import pfv_onnx
from helpers import browser, graphs
from pfv_onnx import PFVError
from pfv_onnx.images import bundled
from pfv_onnx.util import memory
from pfv_onnx.cli import main
from pfv_onnx.images.composites import Scene, composites, pairs
from pfv_onnx.analyses.colouring import class_probabilities
from pfv_onnx.analyses.evaluate import MAX_STEPS, default_scenes, evaluate
from pfv_onnx.analyses.evaluation_batches import CONTROLS

OBJECTS, BACKGROUNDS = bundled.relevance_set()


def test_the_shipped_set_and_its_attribution():
    objects, backgrounds = sorted(OBJECTS.glob("*.webp")), sorted(BACKGROUNDS.glob("*.webp"))
    assert len(objects) == 40 and len(backgrounds) == 6
    attribution = (OBJECTS.parent / "ATTRIBUTION.md").read_text()
    for path in objects + backgrounds:
        line = next(l for l in attribution.splitlines() if f"| {path.parent.name}/{path.name} |" in l)
        # every cut-out is drawn from the emoji font, every background is one of MATE's photos
        assert ("Noto Color Emoji" in line and "OFL-1.1" in line) if path.parent.name == "objects" else ("mate-backgrounds" in line and "GPL-2+" in line)
    scenes = default_scenes((224, 224), 12, seed=0)
    again = default_scenes((224, 224), 12, seed=0)
    for a, b in zip(scenes, again):  # seeded
        np.testing.assert_array_equal(a.image, b.image)
        assert 0.02 < a.mask.mean() < 0.5 and a.image.shape == (224, 224, 3)


@pytest.mark.parametrize("model", bundled.MODELS)
def test_the_default_weighting_points_at_the_object(model):
    """The targets of the focus weighting on the 48 shipped composites, and the paper's border problem."""
    maps = evaluate(model, faithfulness=False).summary["maps"]
    focus, paper, picture = maps["weighting map (focus)"], maps["weighting map (paper)"], maps["PFV (focus)"]
    assert focus["auc"] >= 0.87 and focus["pointing"] >= 0.35 and focus["border"] <= 0.10, focus
    assert picture["auc"] >= 0.85, picture
    assert paper["border"] >= 0.4 and focus["auc"] > paper["auc"]  # measured: 100% and 52% on the border
    assert abs(maps[CONTROLS[1]]["auc"] - 0.5) < 0.01 and maps[CONTROLS[1]]["mass"] == pytest.approx(1.0, abs=0.02)


def test_evaluate_command_writes_a_report(tmp_path):
    out = tmp_path / "evaluate"
    assert main(["evaluate", "mobilenet_v2", "--out", str(out), "--count", "8", "--steps", "5", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    maps = summary["maps"]
    assert summary["images"] == 8 and summary["steps"] == 5 and summary["weighting"] == "focus"
    expected = {"PFV (focus)", "PFV (paper)", "PFV (final)", "weighting map (focus)", "weighting map (paper)", "channel sum of F_N", "EigenCAM",
                "CAM (top class)", *CONTROLS, "component 1", "component 2", "component 3"}
    assert set(maps) == expected
    for name, scores in maps.items():
        curves = scores["curves"]
        assert len(curves["deletion"]) == len(curves["insertion"]) == 6
        assert scores["faithfulness"] == pytest.approx(scores["insertion"] - scores["deletion"], abs=2e-4)
    # The object-pointing maps remove the evidence faster than the random order, and restore it faster.
    assert maps["weighting map (focus)"]["deletion"] < maps[CONTROLS[1]]["deletion"]
    assert maps["weighting map (focus)"]["insertion"] > maps[CONTROLS[1]]["insertion"]
    masks = summary["controls"]["masks"]  # each object found far better than the next image's
    assert masks["own_auc"] > masks["other_auc"] + 0.2
    assert [c["component"] for c in summary["components"]] == [1, 2, 3]
    assert summary["controls"]["trustworthy"] and summary["controls"]["probability_drop"] > 0.05
    assert len(summary["per_image"]) == 8 and "deletion" in summary["per_image"][0]["maps"]["EigenCAM"]
    for name in ("localisation.png", "deletion.png", "insertion.png", "examples.png"):
        Image.open(out / name).load()
    assert 'data-broken-images="0"' in browser.dom(out / "index.html", tmp_path / "profile")


def test_image_and_mask_folders(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir(), masks.mkdir()
    for scene in composites(sorted(OBJECTS.glob("*.webp"))[:4], sorted(BACKGROUNDS.glob("*.webp")), (300, 260), 4, seed=5):
        Image.fromarray(scene.image).save(images / f"{scene.name}.jpg")
        Image.fromarray(scene.mask.astype(np.uint8) * 255).save(masks / f"{scene.name}.png")
    loaded = pairs(images, masks, (224, 224))  # stretched to the model's input, masks too
    assert len(loaded) == 4 and loaded[0].image.shape == (224, 224, 3) and loaded[0].mask.shape == (224, 224)
    out = tmp_path / "out"
    assert main(["evaluate", "mobilenet_v2", "--images", str(images), "--masks", str(masks), "--out", str(out), "--no-faithfulness", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 4 and summary["steps"] is None and "deletion" not in summary["maps"]["EigenCAM"]
    (masks / f"{loaded[0].name}.png").unlink()
    assert main(["evaluate", "mobilenet_v2", "--images", str(images), "--masks", str(masks), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert main(["evaluate", "mobilenet_v2", "--images", str(images), "--out", str(tmp_path / "y"), "--quiet"]) == 2


def test_a_model_that_ignores_the_image_is_not_trustworthy(tmp_path, capsys):
    """The curves cannot tell maps apart when filling the image does not change the prediction."""
    model, _, _ = graphs.vgg_like()
    head = next(node for node in model.graph.node if node.op_type == "Gemm").input[1]
    for init in model.graph.initializer:
        if init.name == head:  # a zero head: the same class scores for every image
            init.CopyFrom(numpy_helper.from_array(np.zeros_like(numpy_helper.to_array(init)), init.name))
    path = tmp_path / "blind.onnx"
    onnx.save(model, str(path))
    assert main(["evaluate", str(path), "--out", str(tmp_path / "out"), "--count", "4", "--steps", "3", "--quiet"]) == 1
    assert "not trustworthy" in capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert not summary["controls"]["trustworthy"] and summary["controls"]["probability_drop"] == 0


def test_class_probabilities():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    p = class_probabilities(logits)
    np.testing.assert_allclose(p.sum(axis=1), 1)
    np.testing.assert_allclose(p[1], 1 / 3)
    already = np.array([[0.2, 0.8], [0.5, 0.5]])
    np.testing.assert_array_equal(class_probabilities(already), already)
    # One score per image: a binary classifier's logit, or its probability.
    np.testing.assert_allclose(class_probabilities(np.array([[0.0], [np.log(3)]])), [[0.5, 0.5], [0.25, 0.75]])
    np.testing.assert_allclose(class_probabilities(np.array([[0.9]])), [[0.1, 0.9]])


def test_masks_that_do_not_belong_to_their_images_are_caught(tmp_path):
    scenes = default_scenes((224, 224), 8, seed=3)
    shuffled = [Scene(s.image, np.ascontiguousarray(~s.mask), s.name) for s in scenes]  # the background marked
    evaluation = evaluate("mobilenet_v2", shuffled, faithfulness=False)
    assert not evaluation.trustworthy and "masks may not belong" in evaluation.summary["controls"]["problems"][0]
    with pytest.raises(PFVError, match="must mark some of the image"):
        evaluate("mobilenet_v2", [Scene(scenes[0].image, np.zeros((224, 224), np.uint8), "empty")], faithfulness=False)
    with pytest.raises(PFVError, match="model's input size"):
        evaluate("mobilenet_v2", [Scene(scenes[0].image[:100], scenes[0].mask[:100], "small")], faithfulness=False)


def test_a_last_batch_of_one_image(tmp_path):
    """5 images in batches of 4: the last batch holds one image, whose mask check reads another batch's mask."""
    out = tmp_path / "out"
    code = main(["evaluate", "mobilenet_v2", "--out", str(out), "--count", "5", "--batch", "4", "--steps", "2", "--quiet"])
    summary = json.loads((out / "summary.json").read_text())
    assert code == (0 if summary["controls"]["trustworthy"] else 1)
    assert summary["images"] == 5 and summary["batch"] == 4
    assert all("other_auc" in scores and "deletion" in scores for entry in summary["per_image"] for scores in entry["maps"].values())
    assert summary["controls"]["masks"]["map"] in summary["maps"]
    # One image alone has no other mask to compare with: the run still ends, without that check.
    one = evaluate("mobilenet_v2", default_scenes((224, 224), 1), faithfulness=False)
    assert one.summary["controls"]["masks"] is None and one.summary["images"] == 1


def test_masks_shifted_by_one_image_are_caught():
    """Each image with the next image's mask: a map may still lead by chance against one other mask, but
    not against the masks of several others, by more than wrong pairings do."""
    scenes = default_scenes((224, 224), 8, seed=0)
    shifted = [Scene(s.image, scenes[(i + 1) % len(scenes)].mask, s.name) for i, s in enumerate(scenes)]
    wrong = evaluate("mobilenet_v2", shifted, faithfulness=False).summary["controls"]
    assert not wrong["trustworthy"] and any("masks may not belong" in p for p in wrong["problems"]), wrong
    right = evaluate("mobilenet_v2", scenes, faithfulness=False).summary["controls"]
    assert right["trustworthy"], right["problems"]
    masks = right["masks"]  # measured: 0.860 against 0.425 for the 7 other masks, p 0.0005
    assert masks["own_auc"] > masks["other_auc"] + 0.2 and masks["p_value"] < 0.01 and masks["other_masks"] == 7
    # Too few images cannot tell their masks from a wrong pairing: said, not passed.
    few = evaluate("mobilenet_v2", scenes[:3], faithfulness=False).summary["controls"]
    assert not few["trustworthy"] and "3 images are too few" in few["problems"][0]


def save_pairs(images, masks, scenes, mask_suffix=".png"):
    images.mkdir(parents=True, exist_ok=True), masks.mkdir(parents=True, exist_ok=True)
    for scene in scenes:
        Image.fromarray(scene.image).save(images / f"{scene.name}.jpg")
        Image.fromarray(scene.mask.astype(np.uint8) * 255).save(masks / f"{scene.name}{mask_suffix}")


def test_folders_of_masks_shifted_by_one_image_are_caught(tmp_path, capsys):
    scenes = default_scenes((224, 224), 8, seed=0)
    images, masks = tmp_path / "images", tmp_path / "masks"
    save_pairs(images, masks, scenes)
    assert main(["evaluate", "mobilenet_v2", "--images", str(images), "--masks", str(masks), "--out", str(tmp_path / "right"), "--no-faithfulness", "--quiet"]) == 0
    names = [s.name for s in scenes]
    for name in names:
        (masks / f"{name}.png").rename(masks / f"{name}.old")
    for name, next_name in zip(names, names[1:] + names[:1]):  # each image gets the next one's mask
        (masks / f"{next_name}.old").rename(masks / f"{name}.png")
    assert main(["evaluate", "mobilenet_v2", "--images", str(images), "--masks", str(masks), "--out", str(tmp_path / "wrong"), "--no-faithfulness", "--quiet"]) == 1
    assert "masks may not belong" in capsys.readouterr().err
    assert not json.loads((tmp_path / "wrong" / "summary.json").read_text())["controls"]["trustworthy"]


def test_an_image_pairs_with_one_mask_or_is_refused(tmp_path, capsys):
    scenes = default_scenes((224, 224), 4, seed=1)
    # A folder-per-class root: the same name in two classes, each with its own mask at the same place.
    root, masks = tmp_path / "classes", tmp_path / "class_masks"
    save_pairs(root / "cats", masks / "cats", [Scene(scenes[0].image, scenes[0].mask, "x")])
    save_pairs(root / "dogs", masks / "dogs", [Scene(scenes[1].image, scenes[1].mask, "x")])
    loaded = pairs(root, masks, (224, 224))
    assert [s.name for s in loaded] == ["cats/x", "dogs/x"]
    np.testing.assert_array_equal(loaded[0].mask, scenes[0].mask)
    np.testing.assert_array_equal(loaded[1].mask, scenes[1].mask)
    # One flat folder of masks for that root would give both images one mask: refused.
    flat = tmp_path / "flat_masks"
    save_pairs(tmp_path / "unused", flat, [Scene(scenes[0].image, scenes[0].mask, "x")])
    with pytest.raises(PFVError, match="no mask for it"):
        pairs(root, flat, (224, 224))

    def refused(images, masks, what):
        out = tmp_path / "out"
        assert main(["evaluate", "mobilenet_v2", "--images", str(images), "--masks", str(masks), "--out", str(out), "--no-faithfulness", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert what in err and err.count("\n") == 1, err
        assert not out.exists()

    images, masks = tmp_path / "images", tmp_path / "masks"
    save_pairs(images, masks, scenes)
    Image.fromarray(~scenes[0].mask).save(masks / f"{scenes[0].name}.bmp")  # a second mask, of another suffix
    refused(images, masks, "two masks for it")
    (masks / f"{scenes[0].name}.bmp").unlink()
    Image.fromarray(scenes[0].image).save(images / f"{scenes[0].name}.png")  # a second image for one mask
    refused(images, masks, "two images of one name would share one mask")


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_a_mask_with_transparency_marks_the_object_by_its_alpha(tmp_path, mode):
    """The object opaque over transparent black, as a cut-out: its colour is black everywhere."""
    scene = default_scenes((224, 224), 1, seed=2)[0]
    alpha = scene.mask.astype(np.uint8) * 255
    if mode == "P":  # a palette of black opaque (0) and black transparent (1)
        mask = Image.fromarray(np.where(scene.mask, 0, 1).astype(np.uint8), "P")
        mask.putpalette([0, 0, 0, 0, 0, 0])
        mask.info["transparency"] = 1
    else:
        planes = np.stack([np.zeros_like(alpha)] * (len(mode) - 1) + [alpha], axis=-1)
        mask = Image.fromarray(planes, mode)
    save_pairs(tmp_path / "images", tmp_path / "masks", [scene])
    mask.save(tmp_path / "masks" / f"{scene.name}.png")
    np.testing.assert_array_equal(pairs(tmp_path / "images", tmp_path / "masks", (224, 224))[0].mask, scene.mask)
    # Opaque, the mask is read by its colour: the object where it is not black.
    opaque = np.stack([alpha] * 3 + [np.full_like(alpha, 255)], axis=-1)
    Image.fromarray(opaque, "RGBA").save(tmp_path / "masks" / f"{scene.name}.png")
    np.testing.assert_array_equal(pairs(tmp_path / "images", tmp_path / "masks", (224, 224))[0].mask, scene.mask)


def test_steps_and_count_beyond_their_limits_are_refused_up_front(tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert main(["evaluate", "mobilenet_v2", "--out", str(out), "--count", "4", "--steps", "1000000000", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"steps must be from 2 to {MAX_STEPS}" in err and err.count("\n") == 1 and not out.exists()
    with pytest.raises(PFVError, match="steps must be from 2"):
        evaluate("mobilenet_v2", default_scenes((224, 224), 4), steps=MAX_STEPS + 1)
    # A million composites take about 190 GB: refused before any is made (here with 1 GB available).
    monkeypatch.setattr(memory, "available_bytes", lambda: 1 << 30)
    assert main(["evaluate", "mobilenet_v2", "--out", str(out), "--count", "1000000", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "1000000 images and their masks at 224 x 224 needs about 186.9 GB" in err and err.count("\n") == 1 and not out.exists()


def test_the_batches_on_dask_give_the_numbers_in_process(tmp_path):
    """The batches (4, 4 and 2 images: 3 tasks) on a local two-worker cluster, the curves included: the same
    summary, image by image in the same order, and the same example maps (from every batch), as in process;
    progress a batch at a time."""
    model = str(bundled.model_path("mobilenet_v2"))
    local = evaluate(model, count=10, batch=4, steps=3, examples=9)
    seen = []
    remote = pfv_onnx.evaluate(model, count=10, batch=4, steps=3, examples=9, dask="local", progress=lambda done, total: seen.append((done, total)))
    assert len(seen) == 3 and seen[-1] == (10, 10) and {done - before for (before, _), (done, _) in zip([(0, 10), *seen], seen)} <= {2, 4}
    for summary in (remote.summary, local.summary):
        summary.pop("seconds")
    assert remote.summary == local.summary and "deletion" in remote.summary["per_image"][9]["maps"]["PFV (focus)"]
    assert set(remote.examples) == set(local.examples) and len(local.examples["image"]) == 9
    assert all(np.array_equal(remote.examples[k], local.examples[k]) for k in local.examples)
    remote.save(tmp_path / "evaluate")
    assert json.loads((tmp_path / "evaluate" / "summary.json").read_text())["images"] == 10


def test_what_a_cluster_cannot_run_is_refused_before_it_starts(tmp_path, monkeypatch):
    """A model in memory, and a model with no class scores for the curves: one line, no cluster started."""
    from pfv_onnx.analyses import evaluation_batches

    monkeypatch.setattr(evaluation_batches, "on_cluster", lambda *args: pytest.fail("a cluster was started"))
    with pytest.raises(PFVError, match="a model given in memory cannot be used for evaluate on Dask"):
        evaluate(onnx.load(str(bundled.model_path("mobilenet_v2"))), count=12, faithfulness=False, dask="local")
    model, _, final = graphs.vgg_like()
    del model.graph.output[:]
    model.graph.output.append(graphs.output(final, ["N", 16, 8, 8]))  # the features only: no class scores
    path = tmp_path / "features.onnx"
    onnx.save(model, str(path))
    with pytest.raises(PFVError, match="no class scores"):
        evaluate(str(path), count=4, steps=3, dask="local")
