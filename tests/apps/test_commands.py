"""Every command takes the same common flags, is silent with --quiet, and never writes into a folder (or
over a file) that holds something without --overwrite."""

from __future__ import annotations

import pytest

from pfv_onnx.images import bundled
from pfv_onnx.cli import build_parser, main

PHOTOS = [str(p) for p in bundled.sample_images()[:3]]
GCOMPRIS = bundled.sample_images()[0].parent / "gcompris5"


def command(name: str, out: str) -> list[str]:
    """A small, real run of each command, writing to ``out``."""
    animals = sorted(str(p) for p in (GCOMPRIS / "animals").glob("*.webp"))
    return {
        "explain": ["explain", "mobilenet_v2", *PHOTOS, "--out", out],
        "fit": ["fit", "mobilenet_v2", *PHOTOS, "--out", out],
        "debug": ["debug", "mobilenet_v2", "--image", PHOTOS[0], "--true-class", *animals[:3], "--predicted-class", *animals[3:6], "--out", out],
        "survey": ["survey", "mobilenet_v2", str(GCOMPRIS), "--out", out],
        "sanity": ["sanity", "mobilenet_v2", *PHOTOS[:2], "--out", out, "--steps", "1"],
        "demo": ["demo", "--out", out],
        "export": ["export", "mobilenet_v2", out],
    }[name]


WRITES_A_FILE = {"fit", "export"}
COMMANDS = ["explain", "fit", "debug", "survey", "sanity", "demo", "export"]


def occupied(tmp_path, name: str, content: bytes):
    """An output that holds something: the file a command writes, or a folder with a file in it."""
    out = tmp_path / ("out.file" if name in WRITES_A_FILE else "out")
    if name in WRITES_A_FILE:
        out.write_bytes(content)
    else:
        out.mkdir()
        (out / "notes.txt").write_bytes(content)
    return out


@pytest.mark.parametrize("name", COMMANDS)
def test_existing_output_is_refused_without_overwrite(name, tmp_path, capsys):
    out = occupied(tmp_path, name, b"keep me")
    assert main(command(name, str(out))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0], err
    kept = out if name in WRITES_A_FILE else out / "notes.txt"
    assert kept.read_bytes() == b"keep me" and (name in WRITES_A_FILE or sorted(p.name for p in out.iterdir()) == ["notes.txt"])


@pytest.mark.parametrize("name", COMMANDS)
def test_quiet_prints_nothing_and_overwrite_writes(name, tmp_path, capsys):
    out = occupied(tmp_path, name, b"old")
    assert main([*command(name, str(out)), "--quiet", "--overwrite"]) in (0, 1)  # sanity passes or fails on 2 photos
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert out.read_bytes() != b"old" if name in WRITES_A_FILE else (out / "index.html").exists()


@pytest.mark.parametrize("name", ["explain", "fit", "debug", "survey", "sanity", "demo"])
def test_every_command_that_opens_a_model_takes_provider_and_preset(name):
    args = build_parser().parse_args([*command(name, "o"), "--provider", "CPU", "--preset", "imagenet", "--quiet", "--overwrite"])
    assert (args.providers, args.preset, args.quiet, args.overwrite) == (["CPU"], "imagenet", True, True)
