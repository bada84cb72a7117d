"""Images from strangers: only the listed formats, decoded in bounded memory; broken and odd files give a result
or their reason; their names reach pages and the terminal as text, never as markup or control characters."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pfv_onnx import PFV, ImageError, PFVError
from pfv_onnx.cli import main
from pfv_onnx.images import bundled
from pfv_onnx.images.preprocess import FORMATS, MAX_PIXELS, load_image
from pfv_onnx.render.html import relative_link
from PIL import Image

from helpers import browser
from helpers.cli import one_line, run_cli

PHOTOS = [str(p) for p in bundled.sample_images()[:3]]
PAYLOAD = "<img src=x onerror=\"document.title='pwned'\">"


def test_undecodable_images(mobilenet, tmp_path):
    fake = tmp_path / "photo.jpg"
    fake.write_text("not a jpeg")
    with pytest.raises(ImageError, match="photo.jpg: cannot decode image"):
        mobilenet([fake])
    with pytest.raises(ImageError, match="no such file"):
        mobilenet([tmp_path / "missing.jpg"])
    with pytest.raises(ImageError, match="uint8"):
        mobilenet([np.zeros((4, 4, 3), np.float64)])


def test_wrong_batch_shape(mobilenet):
    with pytest.raises(PFVError, match="expected a batch of shape \\(B, 3, 224, 224\\)"):
        mobilenet(np.zeros((2, 3, 100, 100), np.float32))


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


def other_formats(folder: Path) -> dict[str, str]:
    """Files in formats Pillow reads but pfv-onnx does not, each named like a photo."""
    picture = Image.new("RGB", (32, 32), (200, 30, 30))
    made = {}
    for name, kind in {"sgi.jpg": "SGI", "tga.jpg": "TGA", "pcx.jpg": "PCX", "ico.jpg": "ICO", "im.jpg": "IM", "dds.jpg": "DDS"}.items():
        picture.save(folder / name, format=kind)
        made[name] = kind
    # PostScript that loops for ever, named .png: Pillow would hand it to Ghostscript where it is installed.
    (folder / "postscript.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n{ } loop\n")
    made["postscript.png"] = "EPS"
    return made


@pytest.mark.filterwarnings("ignore:IM image format is deprecated")
def test_only_the_listed_formats_are_decoded(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(PHOTOS[0], folder / "real.png")
    made = other_formats(folder)
    out = tmp_path / "report"
    proc = run_cli("explain", "mobilenet_v2", str(folder), "--out", str(out), "--quiet", timeout=120)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    skipped = {Path(s["source"]).name: s["reason"] for s in summary["skipped"]}
    assert set(skipped) == set(made) and [i["name"] for i in summary["images"]] == ["real"]
    for reason in skipped.values():
        assert f"not one of {', '.join(FORMATS)}" in reason
    assert len(proc.stderr.strip().splitlines()) == len(made)


def test_decoding_memory_is_bounded(tmp_path):
    """A float TIFF of 8000 x 8000 (a few hundred KB on disk) is refused before it is decoded; a 1-pixel-high
    PNG 64 million pixels wide decodes in a bounded amount of memory."""
    Image.fromarray(np.zeros((8000, 8000), np.float32), "F").save(tmp_path / "float.tiff", compression="tiff_deflate")
    assert (tmp_path / "float.tiff").stat().st_size < 1_000_000
    with pytest.raises(PFVError, match="take 1,038 MB to decode, over the limit"):
        load_image(tmp_path / "float.tiff")
    Image.MAX_IMAGE_PIXELS, saved = None, Image.MAX_IMAGE_PIXELS
    try:
        Image.new("L", (63_999_999, 1)).save(tmp_path / "wide.png")
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    code = (  # VmHWM, the peak of this process since it started: ru_maxrss would count the parent's too
        "from pathlib import Path\nfrom pfv_onnx.images.preprocess import load_image, fit_image\n"
        f"fit_image(load_image({str(tmp_path / 'wide.png')!r}), (224, 224))\n"
        "print(next(int(l.split()[1]) // 1024 for l in Path('/proc/self/status').read_text().splitlines() if l.startswith('VmHWM')))"
    )
    peak_mb = int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120).stdout)
    assert peak_mb < 600, peak_mb


def test_a_fifo_is_refused_without_being_opened(tmp_path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    proc = run_cli("explain", "mobilenet_v2", str(fifo), "--out", str(tmp_path / "o"), timeout=60)
    assert proc.returncode == 2 and "not a regular file or folder" in one_line(proc.stderr)
    with pytest.raises(PFVError, match="not a regular file"):
        PFV()([fifo])


def test_no_name_reaches_a_page_as_markup(tmp_path):
    model = tmp_path / f"{PAYLOAD}.onnx"
    shutil.copy(bundled.model_path(), model)
    demo_out, explain_out, survey_out = tmp_path / "demo", tmp_path / "explain", tmp_path / "survey"
    assert main(["demo", "--model", str(model), "--out", str(demo_out), "--quiet"]) == 0
    assert main(["explain", str(model), PHOTOS[0], "--out", str(explain_out), "--quiet"]) == 0
    dataset = tmp_path / "data"
    for k, name in enumerate([PAYLOAD.replace("/", ""), "plain"]):
        (dataset / name).mkdir(parents=True)
        shutil.copy(PHOTOS[k], dataset / name / "a.png")
    assert main(["survey", "mobilenet_v2", str(dataset), "--out", str(survey_out), "--quiet"]) == 0
    for page in (demo_out, explain_out, survey_out):
        text = (page / "index.html").read_text()
        assert "<img src=x" not in text and "&lt;img src=x" in text, page
        dom = browser.dom(page / "index.html", tmp_path / f"profile_{page.name}")
        assert "pwned" not in dom.split("</title>")[0] and 'data-broken-images="0"' in dom


def test_pages_link_files_by_relative_encoded_paths():
    """No folder name reads as a URL scheme, query or fragment; a name that is not UTF-8 keeps its bytes."""
    assert relative_link("javascript:alert(1)/index.html", "component-1") == "./javascript%3Aalert%281%29/index.html#component-1"
    assert relative_link("../a?b#c/x.png") == "./../a%3Fb%23c/x.png"
    assert relative_link(os.fsdecode(b"atl\xffas/index.html")) == "./atl%FFas/index.html"
    with pytest.raises(ValueError):
        relative_link("/etc/passwd")


def test_names_reach_the_terminal_without_their_control_characters(tmp_path):
    bad = tmp_path / "red\x1b[31m\x1b]0;title\x07.jpg"
    bad.write_text("not a picture")
    proc = run_cli("explain", "mobilenet_v2", PHOTOS[0], str(bad), "--out", str(tmp_path / "o"), "--quiet", timeout=120)
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert "\x1b" not in line and "\x07" not in line and "\\x1b[31m" in line


def test_a_long_image_name_is_shortened_and_kept_in_the_summary(tmp_path):
    long_name = tmp_path / ("a" * 230 + ".png")
    shutil.copy(PHOTOS[0], long_name)
    out = tmp_path / "o"
    assert main(["explain", "mobilenet_v2", str(long_name), "--out", str(out), "--quiet"]) == 0
    image = json.loads((out / "summary.json").read_text())["images"][0]
    assert image["source"] == str(long_name) and len(image["name"]) <= 100
    assert all(len(Path(f).name) < 255 and (out / f).is_file() for f in image["files"].values())


def test_names_that_are_not_utf8_reach_pages_and_the_terminal_escaped(tmp_path):
    model = tmp_path / os.fsdecode(b"model\xff.onnx")
    shutil.copy(bundled.model_path(), model)
    bad = tmp_path / os.fsdecode(b"photo\x9b31m.jpg")
    bad.write_text("not a picture")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    proc = subprocess.run([sys.executable, "-m", "pfv_onnx", "explain", str(model), PHOTOS[0], str(bad), "--out", str(tmp_path / "o"), "--quiet"],
                          capture_output=True, timeout=120, env=env)
    assert proc.returncode == 1, proc.stderr
    assert b"\x9b" not in proc.stderr and b"\\udc9b31m" in proc.stderr
    assert "\\udcff" in (tmp_path / "o" / "index.html").read_text()
