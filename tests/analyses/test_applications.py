"""The paper's applications from Python: ``pfv_onnx.analyses.{debug,survey,sanity}`` return a result object
and write nothing; its repr is short, and saving it (``pfv_onnx.render.*.save_*``) writes what the command
writes, with the same ``summary.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pfv_onnx import PFV
from pfv_onnx.analyses.debug import DEFAULT_WEIGHTING, debug
from pfv_onnx.analyses.sanity import sanity
from pfv_onnx.analyses.survey import survey
from pfv_onnx.cli import main
from pfv_onnx.errors import OutputExistsError
from pfv_onnx.images import bundled
from pfv_onnx.render.debug import save_debug
from pfv_onnx.render.sanity import save_sanity
from pfv_onnx.render.survey import save_survey

DATASET = bundled.sample_images()[0].parent / "gcompris5"


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def check_like_the_command(tmp_path: Path, result, save, argv: list[str], exit_code: int = 0) -> None:
    """``result`` has a short repr, and ``save(result, folder)`` writes the files and summary that ``argv``'s
    command writes; saving again into the used folder is refused unless ``overwrite``."""
    text = repr(result)
    assert len(text) < 1000 and "array(" not in text, text
    assert save(result, tmp_path / "python") == result.summary
    assert main([*argv, "--out", str(tmp_path / "command"), "--quiet"]) == exit_code
    assert files(tmp_path / "python") == files(tmp_path / "command")
    read = [json.loads((tmp_path / side / "summary.json").read_text()) for side in ("python", "command")]
    assert read[0] == read[1]
    with pytest.raises(OutputExistsError):
        save(result, tmp_path / "python")
    save(result, tmp_path / "python", overwrite=True)


def test_survey_from_python_saves_what_the_command_writes(tmp_path):
    result = survey(PFV("mobilenet_v2"), DATASET, per_class=2, seed=1)
    assert result.similarity.shape == (5, 5) and result.colours.shape == (5, 3) and len(result.labels) == 10
    assert "Survey of 5 classes over 10 sampled images" in repr(result)
    check_like_the_command(tmp_path, result, save_survey, ["survey", "mobilenet_v2", str(DATASET), "--per-class", "2", "--seed", "1"])
    assert "grid.png" in files(tmp_path / "python") and "confusion.png" not in files(tmp_path / "python")


def test_debug_from_python_saves_what_the_command_writes(tmp_path):
    image, true, other = DATASET / "animals", DATASET / "animals", DATASET / "tools"
    failed = sorted(image.iterdir())[0]
    result = debug(PFV("mobilenet_v2", weighting=DEFAULT_WEIGHTING), failed, [true], [other])
    assert set(result.where) == {"true", "predicted"} and len(result.names) == len(result.distributions) == 7
    assert repr(result).startswith(f"Debug of {failed.name}")
    argv = ["debug", "mobilenet_v2", "--image", str(failed), "--true-class", str(true), "--predicted-class", str(other)]
    check_like_the_command(tmp_path, result, save_debug, argv)
    assert {"where_true.png", "where_predicted.png", "panel.png"} <= set(files(tmp_path / "python"))


def test_sanity_from_python_saves_what_the_command_writes(tmp_path):
    photos = [str(p) for p in bundled.sample_images()[:2]]
    result = sanity(PFV("mobilenet_v2"), photos, steps=2)
    assert len(result.pictures) == 1 + len(result.summary["cascade"]) and result.pictures[0].shape == (2, 224, 224, 3)
    assert repr(result).startswith("Randomisation test ")
    check_like_the_command(tmp_path, result, save_sanity, ["sanity", "mobilenet_v2", *photos, "--steps", "2"], 0 if result.passed else 1)
    assert files(tmp_path / "python") == ["curve.png", "index.html", "steps.png", "summary.json"]
