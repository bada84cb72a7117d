"""Python and notebook users get what the command line gets: a notebook executed headless (nbclient) whose
output Chromium renders (colour swatches visible, captions apart, the atlas's view small), the atlas's
``save()``, errors in the caller's language, warnings at the caller's line, and ``overlay``'s arguments."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import numpy as np
import onnx
import pytest
from nbclient import NotebookClient

from helpers import browser, corpus
from pfv_onnx import PFV, PFVError
from pfv_onnx.cli import main
from pfv_onnx.errors import FolderWarning, PresetWarning
from pfv_onnx.images import bundled
from pfv_onnx.render import overlay, to_uint8
from pfv_onnx.render.notebook import MAX_ATLAS_HTML

DATASET = bundled.sample_images()[0].parent / "gcompris5"
LONG = "a_photograph_taken_on_a_long_walk_with_a_very_long_file_name_number_{}"

CELLS = [
    "from pfv_onnx import PFV\npfv = PFV('mobilenet_v2', providers=['CPUExecutionProvider'])",
    "result = pfv(sorted(Path('photos').iterdir()))\nresult",
    f"atlas = pfv.atlas({str(DATASET)!r})\natlas",
    "try:\n    result.save('used')\nexcept Exception as exc:\n    print(exc)",
]

# Per swatch: its size and background; per caption text: where it shows (its box cut by the boxes of the
# ancestors that hide what overflows them), and the cell it belongs to; whether every picture loaded.
MEASURE = """(() => {
  if (document.readyState !== 'complete' || !document.getElementById('atlas')) return null;  // not loaded yet
  const boxes = (el) => el.getBoundingClientRect();
  const swatches = [...document.querySelectorAll('.swatch')].map(s => {
    const r = boxes(s); return {width: r.width, height: r.height, background: getComputedStyle(s).backgroundColor};
  });
  const texts = [];
  const cells = [...document.querySelectorAll('#result div')].filter(d => d.querySelector(':scope > img'));
  cells.forEach((cell, index) => {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const range = document.createRange(); range.selectNodeContents(node);
      let r = range.getBoundingClientRect(), box = {left: r.left, right: r.right, top: r.top, bottom: r.bottom};
      for (let el = node.parentElement; el; el = el.parentElement) {
        if (getComputedStyle(el).overflowX !== 'visible') {
          const c = boxes(el);
          box = {left: Math.max(box.left, c.left), right: Math.min(box.right, c.right), top: Math.max(box.top, c.top), bottom: Math.min(box.bottom, c.bottom)};
        }
      }
      if (box.right > box.left && box.bottom > box.top) texts.push({cell: index, ...box});
    }
  });
  const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length;
  return JSON.stringify({swatches, texts, cells: cells.length, images: document.images.length, broken});
})()"""


@pytest.fixture(scope="module")
def notebook(tmp_path_factory):
    """The executed notebook's cells' outputs, and the folder it ran in."""
    folder = tmp_path_factory.mktemp("notebook")
    (folder / "photos").mkdir()
    for i, photo in enumerate(bundled.sample_images()[:4]):
        shutil.copy(photo, folder / "photos" / f"{LONG.format(i)}{photo.suffix}")
    (folder / "used").mkdir()
    (folder / "used" / "keep.txt").write_text("mine")
    book = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from pathlib import Path")] + [nbformat.v4.new_code_cell(c) for c in CELLS])
    NotebookClient(book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return [cell.outputs for cell in book.cells[1:]], folder


def _html(outputs) -> str:
    return next(o["data"]["text/html"] for o in outputs if o.get("output_type") == "execute_result")


def test_the_notebook_shows_swatches_and_captions_apart(notebook, tmp_path):
    outputs, _ = notebook
    # As Jupyter shows them: each output's HTML in a page of its own, with no stylesheet of ours.
    page = tmp_path / "notebook.html"
    page.write_text(f"<!DOCTYPE html><html><body><div id='result'>{_html(outputs[1])}</div><div id='atlas'>{_html(outputs[2])}</div></body></html>")
    seen = json.loads(browser.evaluate(page, tmp_path / "profile", MEASURE, screenshot=tmp_path / "notebook.png"))
    assert seen["broken"] == 0 and seen["images"] == 8 + 3 * 2 * 2  # inputs and PFV pictures; the atlas's strips
    assert len(seen["swatches"]) >= 2 * 3 + 4 + 1  # the result's and the atlas's component colours, the mixes, the grey
    for swatch in seen["swatches"]:
        assert swatch["width"] >= 8 and swatch["height"] >= 8 and swatch["background"] not in ("", "rgba(0, 0, 0, 0)"), swatch
    assert seen["cells"] == 4 and {t["cell"] for t in seen["texts"]} == {0, 1, 2, 3}
    for a in seen["texts"]:  # no text of a cell shows where another cell's does
        for b in seen["texts"]:
            if a["cell"] != b["cell"]:
                apart = a["right"] <= b["left"] or b["right"] <= a["left"] or a["bottom"] <= b["top"] or b["bottom"] <= a["top"]
                assert apart, (a, b)


def test_the_atlas_shows_itself_briefly(notebook):
    outputs, _ = notebook
    atlas = next(o for o in outputs[2] if o.get("output_type") == "execute_result")
    text, html = atlas["data"]["text/plain"], atlas["data"]["text/html"]
    assert len(text) < 1000 and "Atlas of 3 components over 80 images of 5 classes" in text and ".save(folder)" in text
    assert len(html.encode()) < MAX_ATLAS_HTML and html.count("<img") == 3 * 2 * 2 and "stability" in html
    bars = [o["data"]["text/plain"] for o in outputs[2] if o.get("output_type") == "display_data"]
    assert len(bars) == 1 and bars[0].startswith("[######") and "240/240 image reads" in bars[0]  # the progress, redrawn in place


def test_an_error_in_python_names_the_keyword_and_on_the_command_line_the_flag(notebook, capsys):
    outputs, folder = notebook
    said = "".join(o.get("text", "") for o in outputs[3])
    assert "used: is not empty (use overwrite=True, or another folder)" in said and "--overwrite" not in said
    assert (folder / "used" / "keep.txt").read_text() == "mine" and len(list((folder / "used").iterdir())) == 1
    assert main(["explain", "mobilenet_v2", str(bundled.sample_image("dog")), "--out", str(folder / "used"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "is not empty (use --overwrite, or another folder)" in err and "overwrite=True" not in err


def test_atlas_save_writes_what_the_command_writes(tmp_path):
    command = tmp_path / "command"
    assert main(["atlas", "mobilenet_v2", str(DATASET), "--out", str(command), "--quiet", "--provider", "CPU"]) == 0
    atlas = PFV("mobilenet_v2", providers=["CPUExecutionProvider"]).atlas(DATASET)
    summary = atlas.save(tmp_path / "saved")
    files = sorted(str(p.relative_to(command)) for p in command.rglob("*"))
    assert files == sorted(str(p.relative_to(tmp_path / "saved")) for p in (tmp_path / "saved").rglob("*"))
    assert "basis.npz" in files and "index.html" in files and len([f for f in files if f.startswith("cards/")]) == 12
    written = json.loads((command / "summary.json").read_text())
    assert summary["components"] == written["components"] == json.loads((tmp_path / "saved" / "summary.json").read_text())["components"]
    with pytest.raises(PFVError, match=r"is not empty \(use overwrite=True, or another folder\)"):
        atlas.save(tmp_path / "saved")
    assert atlas.save(tmp_path / "saved", overwrite=True) == summary


def test_a_folder_warning_points_at_the_callers_line(mobilenet, tmp_path):
    (tmp_path / "mixed" / "class").mkdir(parents=True)
    shutil.copy(bundled.sample_image("dog"), tmp_path / "mixed" / "cover.jpg")
    shutil.copy(bundled.sample_image("chelsea"), tmp_path / "mixed" / "class" / "cat.jpg")
    with pytest.warns(FolderWarning) as record:
        mobilenet(tmp_path / "mixed")
    assert [Path(w.filename).name for w in record] == [Path(__file__).name]


def test_a_warning_gives_python_advice_in_python_and_flags_on_the_command_line(tmp_path, capsys):
    keras = tmp_path / "keras.onnx"  # a Keras export, which names no preset
    onnx.save(corpus.load("keras_mobilenet_v2_slim"), keras)
    with pytest.warns(PresetWarning) as record:
        PFV(str(keras))
    said = str(record[0].message)
    assert "give preset=, or write it into the model with export(..., preset=)" in said and "--preset" not in said
    assert Path(record[0].filename).name == Path(__file__).name
    assert main(["explain", str(keras), str(bundled.sample_image("dog")), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "give --preset, or write it into the model with pfv-onnx export --preset" in err and "preset=" not in err


def test_overlay_checks_its_arguments_and_takes_the_image_first(animals_result):
    image, rgb = animals_result.images[0], animals_result.rgb[0]
    expected = overlay(to_uint8(rgb), image)
    assert expected.dtype == np.uint8 and expected.shape == image.shape
    assert np.array_equal(overlay(rgb, image), expected) and np.array_equal(overlay(image, rgb), expected)
    for colours, picture in ((rgb[:100], image), (rgb, image.astype(np.float32)), (rgb, image[..., 0]), (image, image.astype(np.int64))):
        with pytest.raises(ValueError, match=r"^overlay\(colours, image\) takes \(H, W, 3\) colours"):
            overlay(colours, picture)
