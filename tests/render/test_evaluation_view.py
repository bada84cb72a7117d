"""``pfv_onnx.evaluate``'s result shows and saves itself: a repr of a few lines, an inline HTML view under its
stated size that Chromium renders whole, and ``save()`` writing what ``pfv-onnx evaluate`` writes."""

from __future__ import annotations

import io
import json
import re
import sys

import pytest

import pfv_onnx
from helpers import browser
from pfv_onnx import PFVError
from pfv_onnx.analyses.evaluation_batches import CONTROLS
from pfv_onnx.cli import main
from pfv_onnx.render.evaluation import MAX_HTML
from pfv_onnx.results import EvaluationResult

COUNT = 6


@pytest.fixture(scope="module")
def evaluation() -> EvaluationResult:
    return pfv_onnx.evaluate("mobilenet_v2", count=COUNT, faithfulness=False)


def test_the_repr_is_a_few_lines_with_the_verdict_and_the_best_maps(evaluation):
    assert isinstance(evaluation, EvaluationResult)
    text = repr(evaluation)
    lines = text.splitlines()
    assert len(text) < 1000 and len(lines) <= 6, text
    assert lines[0].startswith(f"Evaluation of {COUNT} images with mobilenet_v2.onnx, weighting focus: trustworthy")
    maps = evaluation.summary["maps"]
    best = max((name for name in maps if name not in CONTROLS), key=lambda name: maps[name]["auc"])
    assert lines[1] == f"  {best}: ROC-AUC {maps[best]['auc']:.3f}, pointing {maps[best]['pointing']:.0%}"
    assert ".save(folder)" in lines[-1]


def test_the_repr_of_a_run_that_is_not_trustworthy_says_why_and_stays_short():
    few = pfv_onnx.evaluate("mobilenet_v2", count=2, faithfulness=False)
    assert not few.trustworthy
    text = repr(few)
    assert len(text) < 1000
    assert "NOT trustworthy" in text.splitlines()[0] and "too few to show that the masks belong to their images" in text
    assert "too few to show that the masks belong" in few._repr_html_()


def test_the_html_view_is_small_and_renders_whole_in_chromium(evaluation, tmp_path):
    html = evaluation._repr_html_()
    assert len(html.encode()) <= MAX_HTML
    assert [source[:23] for source in re.findall(r"src=['\"]([^'\"]*)", html)] == ["data:image/jpeg;base64,"]  # one inline picture
    page = tmp_path / "view.html"
    page.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{html}</body></html>")
    # null until the page (not the blank one before it) has loaded
    measure = """(document.readyState !== 'complete' || !document.querySelector('table')) ? null : JSON.stringify({
      rows: document.querySelectorAll('table tr').length,
      cells: [...document.querySelectorAll('table tr:nth-child(2) td')].map(td => td.textContent),
      images: [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight])})"""
    shown = json.loads(browser.evaluate(page, tmp_path / "profile", measure))
    maps = evaluation.summary["maps"]
    assert shown["rows"] == len(maps) + 1
    first = next(iter(maps))
    assert shown["cells"] == [first, f"{maps[first]['pointing']:.0%}", f"{maps[first]['border']:.0%}", f"{maps[first]['auc']:.3f}", f"{maps[first]['mass']:.3f}"]
    [(complete, width, height)] = shown["images"]
    # the first images (4 columns of 80 px beside the row titles), over the map rows and the two rows above them
    assert complete and 400 < width < 700 and height > (len(maps) + 2) * 80


def test_save_writes_what_the_command_writes(evaluation, tmp_path):
    command, saved = tmp_path / "command", tmp_path / "saved"
    assert main(["evaluate", "mobilenet_v2", "--count", str(COUNT), "--no-faithfulness", "--quiet", "--out", str(command)]) == 0
    summary = evaluation.save(saved)
    files = sorted(p.name for p in command.iterdir())
    assert files == sorted(p.name for p in saved.iterdir()) == ["examples.png", "index.html", "localisation.png", "summary.json"]
    for name in files:
        if name != "summary.json":
            assert (command / name).read_bytes() == (saved / name).read_bytes(), name
    written = [json.loads((folder / "summary.json").read_text()) for folder in (command, saved)]
    for numbers in (*written, summary):
        numbers.pop("seconds")  # the time each run took
    assert written[0] == written[1] == json.loads(json.dumps(summary))


def test_save_refuses_a_used_folder_in_python_words_and_keeps_what_is_there(evaluation, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    with pytest.raises(PFVError, match=re.escape(f"{used}: is not empty (use overwrite=True, or another folder)")):
        evaluation.save(used)
    assert [p.name for p in used.iterdir()] == ["keep.txt"]
    assert evaluation.save(used, overwrite=True) is evaluation.summary
    assert (used / "keep.txt").read_text() == "mine" and (used / "index.html").is_file()


def test_evaluate_draws_a_progress_bar_as_the_command_does(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    pfv_onnx.evaluate("mobilenet_v2", count=5, faithfulness=False)
    assert re.search(r"\r\[#{30}\] 5/5 images, \d+\.\d s\n$", terminal.getvalue()), terminal.getvalue()
