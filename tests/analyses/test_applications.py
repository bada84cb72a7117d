"""The paper's applications from Python: ``PFV.debug``, ``PFV.survey`` and ``PFV.sanity`` return a result and
write nothing; its repr is short, its inline HTML view small, and ``result.save(folder)`` writes what the command
writes, with the same ``summary.json``."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from pfv_onnx import PFV, DebugResult, SanityResult, SurveyResult
from pfv_onnx.analyses.debug import DEFAULT_WEIGHTING
from pfv_onnx.cli import main
from pfv_onnx.errors import OutputExistsError
from pfv_onnx.images import bundled
from pfv_onnx.render.notebook import PANEL_WIDTH

DATASET = bundled.sample_images()[0].parent / "gcompris5"


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def check_like_the_command(tmp_path: Path, result, argv: list[str], exit_code: int = 0) -> None:
    """``result`` has a short repr and a small HTML view (its text over one picture), and ``result.save(folder)``
    writes the files and summary that ``argv``'s command writes; saving again into the used folder is refused
    unless ``overwrite``."""
    text = repr(result)
    assert len(text) < 1000 and "array(" not in text and ".save(folder)" in text, text
    html = result._repr_html_()
    assert html.count("<img ") == 1 and html.count("data:image/jpeg;base64,") == 1 and len(html) < 150_000, len(html)
    assert text.splitlines()[0] in html.replace("&#x27;", "'")
    picture = Image.open(io.BytesIO(base64.b64decode(html.split("base64,")[1].split('"')[0])))
    assert 0 < picture.width <= PANEL_WIDTH
    save = type(result).save
    assert save(result, tmp_path / "python") == result.summary
    assert main([*argv, "--out", str(tmp_path / "command"), "--quiet"]) == exit_code
    assert files(tmp_path / "python") == files(tmp_path / "command")
    read = [json.loads((tmp_path / side / "summary.json").read_text()) for side in ("python", "command")]
    assert read[0] == read[1]
    with pytest.raises(OutputExistsError):
        save(result, tmp_path / "python")
    save(result, tmp_path / "python", overwrite=True)


def test_survey_from_python_saves_what_the_command_writes(tmp_path):
    result = PFV("mobilenet_v2").survey(DATASET, per_class=2, seed=1)
    assert isinstance(result, SurveyResult)
    assert result.similarity.shape == (5, 5) and result.colours.shape == (5, 3) and len(result.labels) == 10
    assert "Survey of 5 classes over 10 sampled images" in repr(result)
    check_like_the_command(tmp_path, result, ["survey", "mobilenet_v2", str(DATASET), "--per-class", "2", "--seed", "1"])
    assert "grid.png" in files(tmp_path / "python") and "confusion.png" not in files(tmp_path / "python")


def test_debug_from_python_saves_what_the_command_writes(tmp_path):
    image, true, other = DATASET / "animals", DATASET / "animals", DATASET / "tools"
    failed = sorted(image.iterdir())[0]
    result = PFV("mobilenet_v2", weighting=DEFAULT_WEIGHTING).debug(failed, [true], [other])
    assert isinstance(result, DebugResult)
    assert set(result.where) == {"true", "predicted"} and len(result.names) == len(result.distributions) == 7
    assert repr(result).startswith(f"Debug of {failed.name}")
    argv = ["debug", "mobilenet_v2", "--image", str(failed), "--true-class", str(true), "--predicted-class", str(other)]
    check_like_the_command(tmp_path, result, argv)
    assert {"where_true.png", "where_predicted.png", "panel.png"} <= set(files(tmp_path / "python"))


def test_sanity_from_python_saves_what_the_command_writes(tmp_path):
    photos = [str(p) for p in bundled.sample_images()[:2]]
    result = PFV("mobilenet_v2").sanity(photos, steps=2)
    assert isinstance(result, SanityResult)
    assert len(result.pictures) == 1 + len(result.summary["cascade"]) and result.pictures[0].shape == (2, 224, 224, 3)
    assert repr(result).startswith("Randomisation test ")
    check_like_the_command(tmp_path, result, ["sanity", "mobilenet_v2", *photos, "--steps", "2"], 0 if result.passed else 1)
    assert files(tmp_path / "python") == ["curve.png", "index.html", "steps.png", "summary.json"]
