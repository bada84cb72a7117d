"""``explain``, ``demo`` and ``result.save`` end to end, and their HTML in a real headless browser."""

from __future__ import annotations

import io
import json
import re

import cv2
import numpy as np
import pytest
from PIL import Image

from helpers import browser
from helpers.cli import run_cli
from pfv_onnx import PFV
from pfv_onnx.images import bundled
from pfv_onnx.cli import main
from pfv_onnx.runtime.stream import MAX_BATCH, split_batches
from pfv_onnx.images.preprocess import expand_inputs
from pfv_onnx.util.progress import Progress
from pfv_onnx.render import Figure, Section, encode_png, page, png
from pfv_onnx.render.html import EAGER_PICTURES
from pfv_onnx.render.report import MOSAIC_GAP, MOSAIC_WIDTH, PICTURES, labelled_mosaic, unique_names

STAGES = {"preprocess", "forward", "decomposition", "weighting", "render", "png_encode"}
CAPTION = 20  # pixels of a caption under a mosaic's tile


def decode(path):
    with Image.open(path) as picture:
        return np.asarray(picture.convert("RGB"))


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    out = tmp_path_factory.mktemp("explain")
    photos = bundled.sample_images()
    assert main(["explain", "mobilenet_v2", str(photos[0].parent), "--out", str(out), "--batch", "3", "--quiet"]) == 0
    return out, photos


def test_explain_writes_every_promised_file(explained):
    out, photos = explained
    for photo in photos:
        for kind in PICTURES:
            picture = decode(out / "images" / f"{photo.stem}_{kind}.png")
            assert picture.shape == (224, 224, 3) and picture.std() > 5
    for number, count in enumerate([3, 3, 2], start=1):  # --batch 3 over 8 photos, in order
        # input over PFV, a caption band under each
        assert decode(out / "mosaics" / f"batch_{number}.png").shape == (2 * 224 + CAPTION, count * 224 + (count - 1) * 4, 3)


def test_summary_holds_what_it_promises(explained):
    out, photos = explained
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["path"].endswith("mobilenet_v2.onnx") and len(summary["model"]["sha256"]) == 64
    assert summary["model"]["preset"] == "imagenet" and summary["model"]["input"]["size"] == [224, 224]
    # The default weighting reads the last of the four taps the rule finds (the 14 x 14 stage).
    assert summary["options"]["weighting"] == "focus" and summary["taps"] == [PFV(weighting="paper").taps[-1]]
    assert summary["final"].startswith("/features/features.18")
    assert [b["images"] for b in summary["batches"]] == [[p.stem for p in photos[i : i + 3]] for i in (0, 3, 6)]
    for batch in summary["batches"]:
        ratios = batch["explained_variance_ratio"]
        assert len(ratios) == 3 and ratios == sorted(ratios, reverse=True) and 0 < sum(ratios) < 1
    images = {image["name"]: image for image in summary["images"]}
    assert set(images) == {p.stem for p in photos}
    chelsea = images["chelsea"]
    assert len(chelsea["top5"]) == 5 and "cat" in chelsea["top5"][0]["label"]
    assert chelsea["source"].endswith("chelsea.png") and set(chelsea["files"]) == set(PICTURES)
    assert set(summary["timings_s"]) == STAGES and all(v >= 0 for v in summary["timings_s"].values())
    assert summary["options"]["batch"] == 3 and summary["options"]["n_components"] == 3


def test_report_in_a_real_browser(explained, tmp_path):
    out, photos = explained
    html = browser.dom(out / "index.html", tmp_path / "profile")
    assert 'data-broken-images="0"' in html
    # per image its pictures; per batch its mosaic and, per component and side, its strongest images (up to 3)
    assert len(re.findall(r"<img ", html)) == len(photos) * len(PICTURES) + 3 + 3 * 2 * len(photos)
    assert "component 1 (red):" in html and "of the variance" in html
    shot = decode(browser.screenshot(out / "index.html", tmp_path / "profile2", tmp_path / "shot.png"))
    assert shot.std() > 30  # not a blank page
    assert (shot.max(axis=2) - shot.min(axis=2) > 60).mean() > 0.05  # coloured pictures are on screen


def test_browser_check_catches_a_missing_picture(explained, tmp_path):
    out, _ = explained
    broken = tmp_path / "broken"
    broken.mkdir()
    page = (out / "index.html").read_text().replace('src="./images/chelsea_pfv.png"', 'src="./images/missing.png"')
    (broken / "index.html").write_text(page)
    html = browser.dom(broken / "index.html", tmp_path / "profile")
    assert not re.search(r'data-broken-images="0"', html) and "could not be loaded" in html


def test_a_long_report_marks_its_later_pictures_lazy_and_still_counts_failures(tmp_path):
    """Past EAGER_PICTURES the pictures are marked to load lazily (the browser decides when; headless
    Chromium loads them at once); a failed picture is counted whether it was eager or lazy."""
    (tmp_path / "tile.png").write_bytes(encode_png(np.full((64, 64, 3), 200, np.uint8)))
    count = EAGER_PICTURES + 50
    figures = [Figure("tile.png", f"picture {i}", size=(64, 64)) for i in range(count)]
    html_text = page("long", [], [Section("all", figures=figures)])
    assert html_text.count('loading="lazy"') == 50 and html_text.count('width="64" height="64"') == count
    (tmp_path / "long.html").write_text(html_text)
    assert 'data-broken-images="0"' in browser.dom(tmp_path / "long.html", tmp_path / "profile")
    first, last = html_text.index('src="./tile.png"'), html_text.rindex('src="./tile.png"')
    eager_missing = html_text[:first] + 'src="./nowhere.png"' + html_text[first + len('src="./tile.png"'):]
    lazy_missing = html_text[:last] + 'src="./far.png"' + html_text[last + len('src="./tile.png"'):]
    for name, text, missing in (("eager", eager_missing, "nowhere.png"), ("lazy", lazy_missing, "far.png")):
        (tmp_path / f"{name}.html").write_text(text)
        html = browser.dom(tmp_path / f"{name}.html", tmp_path / f"profile_{name}")
        assert 'data-broken-images="1"' in html and missing in html, name


def test_demo_reproduces_the_figures(tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    fig2, fig3, fig4 = (decode(out / f) for f in ("fig2_batch.png", "fig3_batch_and_weights.png", "fig4_baselines.png"))
    columns = 5 * 224 + 4 * 4 + 150  # five photos and the row titles
    assert fig2.shape[1] == fig3.shape[1] == fig4.shape[1] == columns
    assert fig2.shape[0] > 4 * 224 and fig3.shape[0] > 4 * 224 and fig4.shape[0] > 7 * 224  # with CAM rows
    html = browser.dom(out / "index.html", tmp_path / "profile")
    assert 'data-broken-images="0"' in html and "Figure 4" in html and "this model has one" in html


def test_result_save(mobilenet, tmp_path):
    result = mobilenet(bundled.sample_images()[:2])
    summary = result.save(tmp_path / "saved")
    assert [i["name"] for i in summary["images"]] == [p.stem for p in bundled.sample_images()[:2]]
    assert (tmp_path / "saved" / "index.html").exists() and (tmp_path / "saved" / "mosaics" / "batch_1.png").exists()
    assert json.loads((tmp_path / "saved" / "summary.json").read_text())["taps"] == mobilenet.taps


def test_streaming_run_writes_the_same_bytes_as_the_in_memory_path(explained, mobilenet, tmp_path):
    """explain (decoding, forward passes, finishing and writing in threads) against one call per batch
    saved in the calling thread: every picture and mosaic identical to the byte."""
    out, photos = explained
    photos = expand_inputs([photos[0].parent])  # in the order explain batched them
    for index, part in enumerate(split_batches(len(photos), 3)):
        saved = tmp_path / f"batch_{index}"
        mobilenet([photos[i] for i in part]).save(saved)
        assert (saved / "mosaics" / "batch_1.png").read_bytes() == (out / "mosaics" / f"batch_{index + 1}.png").read_bytes()
        for i in part:
            for kind in PICTURES:
                name = f"images/{photos[i].stem}_{kind}.png"
                assert (saved / name).read_bytes() == (out / name).read_bytes(), name


def test_mosaic_of_a_large_batch_wraps_into_rows(mobilenet, tmp_path):
    photos = bundled.sample_images()
    count = 12  # six to a row
    result = mobilenet([photos[i % len(photos)] for i in range(count)])
    result.names = [f"photo_{i}" for i in range(count)]
    result.save(tmp_path / "big")
    picture = decode(tmp_path / "big" / "mosaics" / "batch_1.png")
    assert picture.shape == (2 * (2 * 224 + CAPTION) + 4, 6 * 224 + 5 * 4, 3) and picture.shape[1] <= MOSAIC_WIDTH
    assert decode(tmp_path / "big" / "images" / "photo_0_pfv.png").shape == (224, 224, 3)  # the pictures stay whole


@pytest.mark.parametrize("count, columns, tile", [(1, 1, 224), (8, 6, 224), (39, 6, 224), (64, 6, 224), (65, 9, 224), (500, 23, 85)])
def test_mosaic_fits_its_width_at_any_batch_size(count, columns, tile):
    rgb = np.random.default_rng(0).random((count, 224, 224, 3), dtype=np.float32)
    grid = labelled_mosaic(rgb, (rgb * 255).astype(np.uint8), [f"image {i}" for i in range(count)])
    rows = -(-count // columns)
    assert grid.shape == (rows * (2 * tile + CAPTION) + (rows - 1) * MOSAIC_GAP, columns * tile + (columns - 1) * MOSAIC_GAP, 3)
    assert grid.shape[1] <= MOSAIC_WIDTH


@pytest.mark.parametrize("deflater", ["isal", "zlib"])
@pytest.mark.parametrize("shape", [(224, 224, 3), (1, 1, 3), (3, 7, 3), (5, 300), (1, 1)])
def test_png_encoding_round_trips_through_two_decoders(shape, deflater, monkeypatch):
    if deflater == "zlib":  # where the isal wheel is missing
        monkeypatch.setattr(png, "isal_zlib", None)
    else:
        assert png.isal_zlib is not None
    picture = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    data = encode_png(picture)
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == "PNG" and np.array_equal(np.asarray(decoded), picture)
    by_opencv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(by_opencv[..., ::-1] if picture.ndim == 3 else by_opencv, picture)


@pytest.mark.parametrize("bad", [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4, 4), np.uint8), np.zeros((0, 4, 3), np.uint8)])
def test_png_encoding_refuses_what_it_cannot_write(bad):
    with pytest.raises(ValueError):
        encode_png(bad)


def test_split_batches_as_documented():
    assert split_batches(8, 3) == [range(0, 3), range(3, 6), range(6, 8)]
    assert split_batches(MAX_BATCH) == [range(0, MAX_BATCH)]
    assert [len(r) for r in split_batches(MAX_BATCH + 1)] == [32, 33]
    assert [len(r) for r in split_batches(130)] == [43, 44, 43]
    assert split_batches(0) == []


def test_unique_names():
    assert unique_names(["cat", "cat", "dog", "cat", "a b/c"]) == ["cat", "cat_2", "dog", "cat_3", "a_b_c"]
    assert unique_names(["x_2", "x", "x"]) == ["x_2", "x", "x_3"]


def test_progress_bar_only_on_terminals():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    shown, hidden, few = Tty(), io.StringIO(), Tty()
    for stream, total in ((shown, 6), (hidden, 6), (few, Progress.FEW)):
        bar = Progress(total, stream=stream)
        bar.update(total - 1)
        bar.update(1)
        bar.close()
    assert "6/6 images" in shown.getvalue() and hidden.getvalue() == "" and few.getvalue() == ""
    quiet = Tty()
    Progress(6, enabled=False, stream=quiet).update()
    assert quiet.getvalue() == ""


def test_explain_prints_one_closing_line_and_no_progress_when_piped(tmp_path):
    photos = [str(p) for p in bundled.sample_images()[:3]]
    proc = run_cli("explain", "mobilenet_v2", *photos, "--out", str(tmp_path / "o"))
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.count("\n") == 1 and proc.stdout.startswith("explained 3 images in 1 batch")


@pytest.mark.parametrize(
    "args, message",
    [
        (["explain", "mobilenet_v2", "nope.jpg", "--out", "{tmp}/o"], "nope.jpg: no such file or folder"),
        (["explain", "mobilenet_v2", "{photo}", "--out", "{tmp}/a_file"], "exists and is not a folder"),
        (["explain", "mobilenet_v2", "{photo}", "--out", "{tmp}/o", "--batch", "0"], "must be at least 1"),
        (["explain", "mobilenet_v2", "{photo}", "--out", "{tmp}/o", "--frobnicate"], "unrecognized arguments"),
        (["explain", "mobilenet_v2", "--out", "{tmp}/o"], "required: INPUT"),
        (["explain", "mobilenet_v2", "{photo}", "--out", "{tmp}/report"], "holds a report already"),
    ],
)
def test_explain_bad_usage_is_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "summary.json").write_text("{}")
    photo = str(bundled.sample_images()[0])
    argv = [a.format(tmp=tmp_path, photo=photo) for a in args]
    proc = run_cli(*argv)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pfv-onnx: error:") and message in lines[0], proc.stderr
