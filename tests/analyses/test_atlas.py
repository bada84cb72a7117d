"""The component atlas: its array helpers against direct computations, the receptive field on a graph of
known shape, and ``pfv-onnx atlas`` on the shipped 5-class set, its page in the browser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from helpers import browser, graphs
from pfv_onnx import PFV
from pfv_onnx.images import bundled
from pfv_onnx.apps.explain import explain
from pfv_onnx.analyses.atlas import read_atlas
from pfv_onnx.cli import main
from pfv_onnx.core.atlas import Leaders, head_effects, image_strengths, patch_box, purity, ranked_classes, stability
from pfv_onnx.graph.receptive import receptive_field

DATASET = bundled.sample_images()[0].parent / "gcompris5"


def test_image_strengths_find_each_side_and_its_cell():
    scores = np.zeros((2, 3, 4, 2), np.float32)
    scores[0, 1, 2, 0] = 5.0  # image 0, component 0: positive peak at (1, 2)
    scores[1, 2, 3, 0] = -4.0  # image 1, component 0: negative peak at (2, 3)
    scores[1, :, :, 1] = 1.0  # image 1, component 1: positive everywhere
    mean, peak, cell = image_strengths(scores)
    assert mean.shape == (2, 2, 2) and peak.shape == (2, 2, 2) and cell.shape == (2, 2, 2, 2)
    assert peak[0, 0, 0] == 5.0 and tuple(cell[0, 0, 0]) == (1, 2) and mean[0, 0, 0] == pytest.approx(5 / 12)
    assert peak[1, 0, 1] == 4.0 and tuple(cell[1, 0, 1]) == (2, 3)
    assert mean[1, 1, 0] == pytest.approx(1.0) and mean[1, 1, 1] == pytest.approx(-1.0)


def test_leaders_keep_the_largest_across_offers():
    leaders = Leaders(slots=1, top=3)
    leaders.offer(0, np.array([1.0, 5.0]), ["a", "b"])
    leaders.offer(0, np.array([3.0, 0.5, 4.0]), ["c", "d", "e"])
    assert leaders.values[0] == [5.0, 4.0, 3.0] and leaders.items[0] == ["b", "e", "c"]


def test_head_effects_and_ranked_classes_match_a_direct_computation():
    rng = np.random.default_rng(0)
    weight, components = rng.standard_normal((10, 6)), np.linalg.qr(rng.standard_normal((6, 2)))[0].T
    effects = head_effects(weight, components)
    direct = np.array([[weight[k] @ components[j] for k in range(10)] for j in range(2)])
    np.testing.assert_allclose(effects, direct)
    ranked = ranked_classes(effects, 3)
    for j in range(2):
        assert list(ranked[j, 0, 0]) == list(np.argsort(-direct[j])[:3])  # the positive side pushes these up
        assert list(ranked[j, 1, 0]) == list(np.argsort(direct[j])[:3])  # the negative side the opposite ones
        assert list(ranked[j, 0, 1]) == list(ranked[j, 1, 0])


def test_stability_purity_and_patch_boxes():
    a = np.eye(3)
    b = np.array([[-1.0, 0, 0], [0, 0, 1], [0, 1, 0]])
    np.testing.assert_allclose(stability(a, b), [1.0, 0.0, 0.0])
    assert purity(["x", "x", "y", "x"]) == (0.75, "x") and purity([None, None]) == (0.0, None)
    assert patch_box((0, 0), (7, 7), (224, 224), 112) == (0, 0, 112, 112)  # shifted inside the image
    assert patch_box((3, 3), (7, 7), (224, 224), 64) == (80, 80, 144, 144)  # centred on the cell
    assert patch_box((6, 6), (7, 7), (224, 224), 500) == (0, 0, 224, 224)  # never larger than the image


def test_receptive_field_of_a_graph_of_known_shape():
    model, (pool1_in, pool2_in), pool3_in = graphs.vgg_like()
    # conv3, conv3 | pool2 s2, conv3 | pool2 s2, conv3: each 3x3 widens by 2 strides, each pool by 1
    assert receptive_field(model, pool1_in, "image") == (5, 1)
    assert receptive_field(model, pool2_in, "image") == (10, 2)
    assert receptive_field(model, pool3_in, "image") == (20, 4)
    pfv = PFV()
    field = receptive_field(pfv.featurizer.tapped.model, pfv.final, pfv.featurizer.input.name)
    assert field.stride == 32 and field.size > 224  # MobileNetV2's last layer sees more than the image


@pytest.fixture(scope="module")
def atlas_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("atlas")
    assert main(["atlas", "mobilenet_v2", str(DATASET), "--out", str(out), "--quiet"]) == 0
    assert PFV(basis=out / "basis.npz").basis.images == 80  # the basis it fitted, saved beside the page
    return out, json.loads((out / "summary.json").read_text())


def test_atlas_leading_images_come_mostly_from_one_class(atlas_run):
    _, summary = atlas_run
    assert summary["data"]["images"] == 80 and len(summary["data"]["classes"]) == 5
    purities = [side["purity"] for c in summary["components"][:3] for side in c["sides"]]
    assert all(side["chance"] == 0.2 for c in summary["components"] for side in c["sides"])  # 16 images of each class
    assert len(purities) == 6 and min(purities) >= 0.5 and np.mean(purities) >= 0.7
    for c in summary["components"]:
        assert 0.0 <= c["stability"] <= 1.0 and c["explained_variance_ratio"] > 0
        for side in c["sides"]:
            assert len(side["images"]) == 8 and len({i["path"] for i in side["images"]}) == 8
            assert all(Path(i["path"]).parent.name == i["class"] for i in side["images"])
            strengths = [i["strength"] for i in side["images"]]
            assert strengths == sorted(strengths, reverse=True)


def test_atlas_classes_come_from_the_heads_weights(atlas_run, tmp_path):
    out, summary = atlas_run
    pfv = PFV(basis=None)
    pfv.fit([DATASET])
    head = pfv.featurizer.head
    names = bundled.imagenet_labels()
    for j, c in enumerate(summary["components"]):
        effect = head.weight.astype(np.float64) @ pfv.basis.pca.components[j]
        assert [x["label"] for x in c["sides"][0]["classes_up"]] == [names[k] for k in np.argsort(-effect)[:5]]
        assert [x["label"] for x in c["sides"][1]["classes_up"]] == [names[k] for k in np.argsort(effect)[:5]]


@pytest.fixture(scope="module")
def given_basis_atlas(tmp_path_factory):
    """``pfv-onnx fit`` on the shipped set, then ``pfv-onnx atlas --basis`` with that basis and ``--top 4``: the
    basis file and the atlas's folder (read only: a test that changes the atlas copies it)."""
    folder = tmp_path_factory.mktemp("given")
    basis, again = folder / "basis.npz", folder / "again"
    assert main(["fit", "mobilenet_v2", str(DATASET), "--out", str(basis), "--quiet"]) == 0
    assert main(["atlas", "mobilenet_v2", str(DATASET), "--basis", str(basis), "--out", str(again), "--quiet", "--top", "4"]) == 0
    return basis, again


def test_atlas_with_a_given_basis_and_its_page(atlas_run, given_basis_atlas, tmp_path):
    out, summary = atlas_run
    basis, again = given_basis_atlas
    given = json.loads((again / "summary.json").read_text())
    assert not given["basis_fitted_here"] and summary["basis_fitted_here"]
    for c, d in zip(summary["components"], given["components"]):  # the same basis: the same leaders
        assert [i["path"] for i in d["sides"][0]["images"]] == [i["path"] for i in c["sides"][0]["images"][:4]]
    html = browser.dom(out / "index.html", tmp_path / "profile")
    assert 'data-broken-images="0"' in html
    assert html.count("<h2>Component") == 3 and "more red" in html and "less blue" in html
    for c in summary["components"]:
        for side in c["sides"]:
            for name in (f"component_{c['component']}_{side['side']}_images.png", f"component_{c['component']}_{side['side']}_patches.png"):
                assert f"cards/{name}" in html and (out / "cards" / name).stat().st_size > 1000


def test_a_report_links_each_component_to_its_atlas_card(given_basis_atlas, tmp_path, capsys):
    basis, given = given_basis_atlas
    other = tmp_path / "other.npz"
    assert main(["fit", "mobilenet_v2", str(bundled.sample_images()[0].parent), "--out", str(other), "--quiet"]) == 0
    atlas = tmp_path / "atlas"
    shutil.copytree(given, atlas)  # this test damages its atlas at the end
    report = tmp_path / "report"
    photos = [str(DATASET / "tools"), str(DATASET / "fishes")]
    assert main(["explain", "mobilenet_v2", *photos, "--basis", str(basis), "--atlas", str(atlas), "--out", str(report), "--quiet", "--pictures", "pfv"]) == 0
    html = browser.dom(report / "index.html", tmp_path / "profile")
    assert 'data-broken-images="0"' in html and html.count("atlas card") == 3
    assert 'href="./../atlas/index.html#component-1"' in html and "mostly <i>" in html
    page = browser.dom(atlas / "index.html", tmp_path / "profile2")
    assert all(f'id="component-{j}"' in page for j in (1, 2, 3))
    capsys.readouterr()
    refused = main(["explain", "mobilenet_v2", *photos, "--basis", str(other), "--atlas", str(atlas), "--out", str(tmp_path / "no"), "--quiet"])
    assert refused == 2 and "describes another basis" in capsys.readouterr().err and not (tmp_path / "no").exists()
    assert main(["explain", "mobilenet_v2", *photos, "--atlas", str(atlas), "--out", str(tmp_path / "no"), "--quiet"]) == 2
    assert "--atlas needs --basis" in capsys.readouterr().err
    kept = {name: (atlas / name).read_bytes() for name in ("summary.json", "index.html")}
    refused = main(["explain", "mobilenet_v2", *photos, "--basis", str(basis), "--atlas", str(atlas), "--out", str(atlas), "--overwrite", "--quiet"])
    assert refused == 2 and "holds the input" in capsys.readouterr().err  # it would replace the atlas's page
    assert {name: (atlas / name).read_bytes() for name in kept} == kept
    # An atlas whose folder name reads as a URL scheme, in a report's folder: linked as a file all the same.
    outer = tmp_path / "outer"
    shutil.copytree(atlas, outer / "javascript:alert(1)")
    explain(PFV("mobilenet_v2", basis=basis), photos, outer, show_progress=False, overwrite=True, pictures=["pfv"],
            atlas=read_atlas(outer / "javascript:alert(1)", PFV(basis=basis).basis.fingerprint()))
    text = (outer / "index.html").read_text()
    assert 'href="./javascript%3Aalert%281%29/index.html#component-1"' in text and 'href="javascript' not in text
    assert 'src="./images/' in text and 'src="images/' not in text
    summary = json.loads((atlas / "summary.json").read_text())
    summary["components"][0]["sides"][0]["purity"] = "<b>x</b>"  # a damaged or hostile atlas: refused before any picture
    (atlas / "summary.json").write_text(json.dumps(summary))
    assert main(["explain", "mobilenet_v2", *photos, "--basis", str(basis), "--atlas", str(atlas), "--out", str(tmp_path / "no"), "--quiet"]) == 2
    assert "not an atlas's summary" in capsys.readouterr().err and not (tmp_path / "no").exists()


def test_the_scan_on_dask_gives_the_atlas_in_process(basis_file):
    """The scan in shards on a local two-worker cluster (batches of 2: shards of 8 images, 10 tasks): the
    same leading images and patches, the same purities; the stability (from moments merged in another order)
    equal to rounding."""
    local = PFV(basis=basis_file).atlas(DATASET, batch_size=2, progress=lambda *_: None)
    remote = PFV(basis=basis_file).atlas(DATASET, batch_size=2, dask="local", progress=lambda *_: None)
    for near, far in zip(local.summary["components"], remote.summary["components"]):
        assert near["stability"] == pytest.approx(far["stability"], abs=1e-6)
        assert near["sides"] == far["sides"]
    assert local.summary["data"] == remote.summary["data"] and remote.summary["data"]["images"] == 80
    assert all(np.array_equal(a, b) for key in local.images for a, b in zip(local.images[key], remote.images[key]))


def test_leaders_of_shards_merge_in_any_order_to_the_leaders_of_the_whole():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 6, 40).astype(float)  # many ties
    whole = Leaders(slots=1, top=7)
    whole.offer(0, values, list(range(40)))
    parts = []
    for start in range(0, 40, 8):
        part = Leaders(slots=1, top=7)
        part.offer(0, values[start : start + 8], list(range(start, start + 8)))
        parts.append(part)
    for order in ([0, 1, 2, 3, 4], [4, 2, 0, 3, 1]):
        merged = parts[order[0]]
        for i in order[1:]:
            merged = merged.merge(parts[i])
        assert (merged.values, merged.items) == (whole.values, whole.items)


def test_files_the_workers_cannot_read_are_named_as_the_caller_gave_them(basis_file, tmp_path, monkeypatch):
    """Workers read resolved paths; what they could not read is reported by the path given, as in process,
    and counted out of the images read."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in bundled.sample_images()[:5]:
        shutil.copy(photo, folder / photo.name)
    (folder / "broken.jpg").write_bytes(b"not a picture")
    monkeypatch.chdir(tmp_path)
    local = PFV(basis=basis_file).atlas("photos", batch_size=2, progress=lambda *_: None)
    remote = PFV(basis=basis_file).atlas("photos", batch_size=2, dask="local", progress=lambda *_: None)
    assert remote.summary["skipped"] == local.summary["skipped"] and [s["source"] for s in local.summary["skipped"]] == [str(Path("photos/broken.jpg"))]
    assert remote.summary["data"] == local.summary["data"] and local.summary["data"]["images"] == 5
