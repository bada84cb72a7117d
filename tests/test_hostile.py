"""Models, images, basis files and folders from strangers: each crafted file gets its defined outcome, one
line and an exit code, nothing read or written outside what the command was given, no output lost."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from helpers import browser, graphs
from helpers.basis import write_basis
from pfv_onnx import PFV, ModelError, PFVError, export
from pfv_onnx.images import bundled
from pfv_onnx.util import files
from pfv_onnx.util import memory
from pfv_onnx.analyses.basis_file import load_basis
from pfv_onnx.cli import INTERNAL_ERROR, main
from pfv_onnx.runtime.featurizer import Featurizer
from pfv_onnx.graph import reinitialise
from pfv_onnx.util.journal import LOCK
from pfv_onnx.images.labels import parse_labels
from pfv_onnx.images.preprocess import FORMATS, load_image
from pfv_onnx.render.html import relative_link

PHOTOS = [str(p) for p in bundled.sample_images()[:3]]


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pfv_onnx", *args], capture_output=True, text=True, timeout=timeout)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


# ---- images: only the formats the README lists, decoded in bounded memory ------------------------------


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


# ---- pages and the terminal -------------------------------------------------------------------------

PAYLOAD = "<img src=x onerror=\"document.title='pwned'\">"


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


# ---- identity: the hash of what is run ----------------------------------------------------------------


def test_a_basis_binds_to_what_is_run(tmp_path):
    basis = PFV().fit(bundled.sample_images()[:3]).save_basis(tmp_path / "basis.npz")
    # A model with other weights that claims the bundled model's identity in its metadata.
    impostor = reinitialise(onnx.load(str(bundled.model_path())), seed=1)
    export(impostor, tmp_path / "impostor.onnx")
    tapped = onnx.load(str(tmp_path / "impostor.onnx"))
    entry = next(p for p in tapped.metadata_props if p.key == "pfv_onnx")
    entry.value = json.dumps({**json.loads(entry.value), "source_sha256": PFV().featurizer.model_sha256})
    onnx.save(tapped, str(tmp_path / "impostor.onnx"))
    with pytest.raises(PFVError, match="fitted on another model"):
        PFV(tmp_path / "impostor.onnx", basis=basis)

    # Weights in an external file, swapped after the fit.
    folder = tmp_path / "external"
    folder.mkdir()
    onnx.save(onnx.load(str(bundled.model_path())), str(folder / "model.onnx"), save_as_external_data=True, location="weights.bin")
    fitted = PFV(folder / "model.onnx").fit(bundled.sample_images()[:3]).save_basis(tmp_path / "external.npz")
    before = PFV(folder / "model.onnx").describe()["model"]["sha256"]
    shutil.copy(folder / "weights.bin", tmp_path / "weights.bak")
    onnx.save(reinitialise(onnx.load(str(bundled.model_path())), seed=2), str(tmp_path / "other.onnx"), save_as_external_data=True, location="weights.bin")
    shutil.copy(tmp_path / "weights.bin", folder / "weights.bin")
    swapped = PFV(folder / "model.onnx")
    assert swapped.describe()["model"]["sha256"] != before
    with pytest.raises(PFVError, match="fitted on another model"):
        swapped.use_basis(fitted)
    # The model itself and its tapped export still take the basis.
    PFV(basis=basis)
    export("mobilenet_v2", tmp_path / "tapped.onnx", keep_logits=False)
    PFV(tmp_path / "tapped.onnx", basis=basis)


# ---- files: export, fit, explain's journal and names ----------------------------------------------------


@pytest.fixture
def external_model(tmp_path):
    folder = tmp_path / "external"
    folder.mkdir()
    onnx.save(onnx.load(str(bundled.model_path())), str(folder / "model.onnx"), save_as_external_data=True, location="weights.bin")
    return folder / "model.onnx"


def test_export_replaces_its_weights_file_and_keeps_it_on_failure(external_model, tmp_path, monkeypatch):
    dst = tmp_path / "tapped.onnx"
    data = tmp_path / "tapped.onnx.data"
    assert main(["export", str(external_model), str(dst), "--quiet"]) == 0
    size = data.stat().st_size
    for _ in range(2):
        assert main(["export", str(external_model), str(dst), "--overwrite", "--quiet"]) == 0
        assert data.stat().st_size == size  # replaced, not appended to
    assert (data.stat().st_mode & 0o777) == (dst.stat().st_mode & 0o777)
    before = data.read_bytes()

    def failing_save(*args, **kwargs):
        Path(args[1]).with_name("tapped.onnx.data").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(onnx, "save_model", failing_save)
    assert main(["export", str(external_model), str(dst), "--overwrite", "--quiet"]) == 2
    assert data.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["external", "tapped.onnx", "tapped.onnx.data"]


def test_fit_refuses_a_folder_before_fitting(tmp_path, monkeypatch, capsys):
    from pfv_onnx import pfv as pfv_module

    monkeypatch.setattr(pfv_module, "fit_basis", lambda *a, **k: pytest.fail("fitted before checking --out"))
    assert main(["fit", "mobilenet_v2", *PHOTOS, "--out", str(tmp_path), "--overwrite"]) == 2
    assert "is a folder" in one_line(capsys.readouterr().err)


def test_resume_checks_the_journal_against_the_files(tmp_path):
    out = tmp_path / "run"
    args = ["explain", "mobilenet_v2", *PHOTOS, "--out", str(out), "--batch", "1", "--quiet"]
    assert main(args) == 0
    reference = {p.name: p.read_bytes() for p in (out / "images").iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    (out / "summary.json").unlink()
    (out / "index.html").unlink()
    key = {f: summary[f] for f in ("model", "options", "taps", "final", "basis")}
    key["inputs"] = PHOTOS
    journal = [{"key": key},
               {"index": 0, "batch": None, "images": [], "skipped": [], "timings": {}},  # claims done, wrote nothing
               {"index": 1, "batch": {"mosaic": "mosaics/batch_1.png"}, "images": [{"files": {}}], "skipped": [], "timings": {}},
               {"index": float("inf")},  # unreadable from here on
               {"index": 2, "batch": None, "images": [], "skipped": [], "timings": {}}]
    (out / ".pfv-run.jsonl").write_text("\n".join(json.dumps(line) for line in journal) + "\n")
    shutil.rmtree(out / "images")
    assert main(args) == 0
    again = json.loads((out / "summary.json").read_text())
    assert [i["name"] for i in again["images"]] == [i["name"] for i in summary["images"]]
    assert {p.name: p.read_bytes() for p in (out / "images").iterdir()} == reference


def test_a_second_run_into_a_folder_in_use_is_refused(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with open(out / LOCK, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        proc = run_cli("explain", "mobilenet_v2", PHOTOS[0], "--out", str(out), "--overwrite", timeout=120)
    assert proc.returncode == 2 and "another pfv-onnx run is writing into it now" in one_line(proc.stderr)


DATASET = bundled.sample_images()[0].parent / "gcompris5"


def writing_commands(tmp_path: Path) -> dict[str, tuple[list[str], Path, Path]]:
    """Each command that writes a folder or a file: its arguments, its output and that output's lock file."""
    out, p = tmp_path / "out", PHOTOS
    folders = {
        "evaluate": ["--count", "2", "--no-faithfulness"], "atlas": [str(DATASET)], "survey": [str(DATASET)], "sanity": [p[0]],
        "debug": ["--image", p[0], "--true-class", p[1], "--predicted-class", p[2]],
    }
    commands = {name: ([name, "mobilenet_v2", *extra, "--out", str(out)], out, out / LOCK) for name, extra in folders.items()}
    commands["demo"] = (["demo", "--out", str(out)], out, out / LOCK)
    commands["web"] = (["web", str(bundled.model_path()), "--out", str(out)], out, out / LOCK)
    commands["fit"] = (["fit", "mobilenet_v2", p[0], "--out", str(tmp_path / "b.npz")], tmp_path / "b.npz", tmp_path / ".b.npz.pfv-lock")
    commands["export"] = (["export", "mobilenet_v2", str(tmp_path / "t.onnx")], tmp_path / "t.onnx", tmp_path / ".t.onnx.pfv-lock")
    return commands


@pytest.mark.parametrize("command", ["evaluate", "atlas", "survey", "sanity", "debug", "demo", "web", "fit", "export"])
def test_every_command_that_writes_takes_the_run_lock(tmp_path, capsys, command):
    """While another run holds an output's lock, a second run writing it is refused at once, with or without
    --overwrite, and writes nothing."""
    args, out, lock = writing_commands(tmp_path)[command]
    lock.parent.mkdir(exist_ok=True)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        for extra in ([], ["--overwrite"]):
            assert main([*args, *extra, "--quiet"]) == 2, extra
            assert "another pfv-onnx run is writing into it now" in one_line(capsys.readouterr().err)
    assert sorted(p.name for p in lock.parent.iterdir()) == [lock.name]  # the output folder, or the file's folder


def test_two_evaluate_runs_into_one_folder(tmp_path, capsys):
    """The second run, started while the first works, is refused; once the first has finished, its output
    is not replaced without --overwrite. A run refused for its arguments leaves no folder behind."""
    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "pfv_onnx", "evaluate", "mobilenet_v2", "--out", str(out), "--count", "6", "--steps", "3", "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / LOCK).exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert main(["evaluate", "mobilenet_v2", "--out", str(out), "--count", "2", "--no-faithfulness", "--overwrite", "--quiet"]) == 2
        assert "another pfv-onnx run is writing into it now" in one_line(capsys.readouterr().err)
    finally:
        _, err = first.communicate(timeout=300)
    summary = json.loads((out / "summary.json").read_text())
    assert first.returncode in (0, 1) and "Traceback" not in err and summary["images"] == 6 and summary["steps"] == 3
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["evaluate", "mobilenet_v2", "--out", str(out), "--count", "2", "--no-faithfulness", "--quiet"]) == 2
    assert "is not empty" in one_line(capsys.readouterr().err)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main(["evaluate", "mobilenet_v2", "--out", str(tmp_path / "new"), "--images", str(tmp_path), "--quiet"]) == 2
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("command", ["evaluate", "fit"])
def test_an_output_finished_by_another_run_meanwhile_is_not_replaced(tmp_path, capsys, monkeypatch, command):
    """The output is checked again once its lock is held: a run that finished between the first check and
    the lock (here: one that writes its output just as the lock is taken) keeps what it wrote."""
    args, out, _ = writing_commands(tmp_path)[command]
    take = files.hold_lock

    def finished_meanwhile(path, what):
        (out / "summary.json" if out.suffix == "" else out).write_text("the other run's")
        return take(path, what)

    monkeypatch.setattr(files, "hold_lock", finished_meanwhile)
    assert main([*args, "--quiet"]) == 2
    assert ("is not empty" if command == "evaluate" else "exists already") in one_line(capsys.readouterr().err)
    written = out / "summary.json" if out.suffix == "" else out
    assert written.read_text() == "the other run's" and not any(p.name.endswith(("pfv-lock", ".lock")) for p in written.parent.iterdir())


def test_a_basis_of_another_channel_count_is_refused_before_the_run(basis_path, tmp_path, capsys, monkeypatch):
    """A basis that claims this model's features but holds another number of channels: refused before
    anything is written (no journal, no lock, no folder), whether F_N's channels are declared or probed."""
    def wider(header, arrays):
        header["channels"] += 8
        arrays["mean"] = np.concatenate([arrays["mean"], np.zeros(8)])
        arrays["components"] = np.concatenate([arrays["components"], np.zeros((arrays["components"].shape[0], 8))], axis=1)

    crafted = write_basis(tmp_path / "wider.npz", basis_path, wider)
    out = tmp_path / "out"
    assert main(["explain", "mobilenet_v2", *PHOTOS, "--basis", str(crafted), "--out", str(out), "--quiet"]) == 2
    assert re.search("the basis has 1288 channels, this model's F_N .* has 1280", one_line(capsys.readouterr().err))
    assert not out.exists()
    monkeypatch.setattr(Featurizer, "final_shape", property(lambda self: None))  # undeclared: read from a pass
    with pytest.raises(PFVError, match="the basis has 1288 channels, this model's F_N .* has 1280"):
        PFV(basis=crafted)


def test_a_long_image_name_is_shortened_and_kept_in_the_summary(tmp_path):
    long_name = tmp_path / ("a" * 230 + ".png")
    shutil.copy(PHOTOS[0], long_name)
    out = tmp_path / "o"
    assert main(["explain", "mobilenet_v2", str(long_name), "--out", str(out), "--quiet"]) == 0
    image = json.loads((out / "summary.json").read_text())["images"][0]
    assert image["source"] == str(long_name) and len(image["name"]) <= 100
    assert all(len(Path(f).name) < 255 and (out / f).is_file() for f in image["files"].values())


@pytest.mark.parametrize("command", ["survey", "atlas"])
def test_survey_and_atlas_refuse_to_write_inside_their_dataset(tmp_path, command):
    """The next run over the dataset would read the report's pictures as a class."""
    dataset = tmp_path / "data"
    for k in range(2):
        (dataset / f"class{k}").mkdir(parents=True)
        shutil.copy(PHOTOS[k], dataset / f"class{k}" / "a.png")
    proc = run_cli(command, "mobilenet_v2", str(dataset), "--out", str(dataset / "report"), timeout=120)
    assert proc.returncode == 2 and "is inside the dataset" in one_line(proc.stderr)
    assert sorted(p.name for p in dataset.iterdir()) == ["class0", "class1"]


def test_outputs_are_kept_out_of_the_images_they_read(tmp_path, capsys):
    """A report inside a folder of images it reads, a file output that is one of the command's inputs, and a
    refused run's new folders: one line, exit 2, nothing left behind."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(2):
        shutil.copy(PHOTOS[k], photos / f"{k}.png")
    shutil.copy(bundled.model_path(), tmp_path / "m.onnx")
    before = tree(tmp_path)
    runs = {
        "explain": (["explain", "mobilenet_v2", str(photos), "--out", str(photos / "report" / "deeper")], "is inside the dataset"),
        "sanity": (["sanity", "mobilenet_v2", str(photos), "--out", str(photos / "new" / "deeper")], "is inside the dataset"),
        "fit": (["fit", "mobilenet_v2", str(photos / "0.png"), str(photos / "1.png"), "--out", str(photos / "1.png")], "is the input"),
        "export": (["export", str(tmp_path / "m.onnx"), str(tmp_path / "m.onnx")], "is the input"),
    }
    for name, (args, message) in runs.items():
        assert main([*args, "--overwrite", "--quiet"]) == 2, name
        assert message in one_line(capsys.readouterr().err), name
    assert tree(tmp_path) == before


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` and the bytes of its files (``None`` for a folder)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def test_an_output_that_holds_an_input_is_refused(tmp_path, basis_path, capsys):
    """An output folder that is or holds an input (an image, a basis, an atlas, a dataset, masks): one line,
    exit 2, nothing written or replaced, even with --overwrite."""
    photos, dataset, atlas = tmp_path / "photos", tmp_path / "data", tmp_path / "atlas"
    for k, folder in enumerate([photos, dataset / "class0", dataset / "class1", photos / "masks"]):
        folder.mkdir(parents=True)
        shutil.copy(PHOTOS[k % 2], folder / "a.png")
    shutil.copy(basis_path, photos / "basis.npz")
    atlas.mkdir()
    (atlas / "summary.json").write_text("{}")  # an atlas's files: replacing them loses the atlas
    (atlas / "index.html").write_text("<p>atlas</p>")
    before = tree(tmp_path)
    runs = {
        "image": ["explain", "mobilenet_v2", str(photos / "a.png"), "--out", str(photos)],
        "basis": ["explain", "mobilenet_v2", PHOTOS[0], "--basis", str(photos / "basis.npz"), "--out", str(photos)],
        "atlas": ["explain", "mobilenet_v2", PHOTOS[0], "--basis", str(basis_path), "--atlas", str(atlas), "--out", str(atlas)],
        "atlas data": ["atlas", "mobilenet_v2", str(photos), "--out", str(tmp_path)],
        "atlas basis": ["atlas", "mobilenet_v2", str(dataset), "--basis", str(photos / "basis.npz"), "--out", str(photos)],
        "survey": ["survey", "mobilenet_v2", str(dataset), "--out", str(tmp_path)],
        "evaluate": ["evaluate", "mobilenet_v2", "--images", str(photos), "--masks", str(photos / "masks"), "--out", str(photos / "masks")],
        "sanity": ["sanity", "mobilenet_v2", str(photos), "--out", str(photos), "--steps", "2"],
    }
    for name, args in runs.items():
        assert main([*args, "--overwrite", "--quiet"]) == 2, name
        assert "holds the input" in one_line(capsys.readouterr().err), name
    assert tree(tmp_path) == before


# ---- errors and exit codes ----------------------------------------------------------------------------


def test_files_a_user_names_are_read_bounded(tmp_path, basis_path):
    """An atlas's summary.json nested 200,000 deep, a FIFO, a link to /dev/zero, or a sparse file past the
    limit: each refused with one line, without hanging or reading without bound, nothing written."""
    crafted = {
        "deep": (lambda p: p.write_text("[" * 200_000 + "]" * 200_000), "nested too deeply"),
        "fifo": (os.mkfifo, "is not a regular file"),
        "zero": (lambda p: p.symlink_to("/dev/zero"), "is not a regular file"),
        "sparse": (lambda p: p.write_bytes(b"") or os.truncate(p, 65 * 2**20), "too large for an atlas's summary"),
    }
    for kind, (make, message) in crafted.items():
        atlas = tmp_path / kind
        atlas.mkdir()
        make(atlas / "summary.json")
        out = tmp_path / f"report_{kind}"
        proc = run_cli("explain", "mobilenet_v2", PHOTOS[0], "--basis", str(basis_path), "--atlas", str(atlas), "--out", str(out), timeout=60)
        assert proc.returncode == 2 and message in one_line(proc.stderr), kind
        assert not out.exists()


def test_a_bug_has_its_own_exit_code_and_one_line(tmp_path, monkeypatch, capsys):
    from pfv_onnx.apps import explain

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(explain, "write_summary", broken)
    assert main(["explain", "mobilenet_v2", PHOTOS[0], "--out", str(tmp_path / "a"), "--quiet"]) == INTERNAL_ERROR
    assert "internal error: ZeroDivisionError: a bug" in one_line(capsys.readouterr().err)
    with pytest.raises(ZeroDivisionError):
        main(["--traceback", "explain", "mobilenet_v2", PHOTOS[0], "--out", str(tmp_path / "b"), "--quiet"])


def resized_input(model: onnx.ModelProto, dims: list[int | str]) -> onnx.ModelProto:
    for axis, value in enumerate(dims):
        dim = model.graph.input[0].type.tensor_type.shape.dim[axis]
        dim.Clear()
        if isinstance(value, int):
            dim.dim_value = value
        else:
            dim.dim_param = value
    return model


def test_sizes_a_model_or_option_asks_for_are_checked_first(tmp_path, monkeypatch):
    huge = resized_input(graphs.dynamic_size()[0], ["N", 3, "H", "W"])
    with pytest.raises(ModelError, match="100000 x 100000 pixels is over the limit"):
        PFV(huge, size=(100000, 100000))
    batch = resized_input(graphs.vgg_like()[0], [1_000_000_000, 3, 32, 32])
    onnx.save(batch, str(tmp_path / "batch.onnx"))
    proc = run_cli("explain", str(tmp_path / "batch.onnx"), PHOTOS[0], "--out", str(tmp_path / "o"), timeout=120)
    assert proc.returncode == 2 and "the model's fixed batch of 1000000000 images needs about" in one_line(proc.stderr)
    pfv = PFV()
    monkeypatch.setattr(memory, "available_bytes", lambda: 50 * 2**20)
    with pytest.raises(PFVError, match="a batch of 100 images at 224 x 224 needs about"):
        pfv([PHOTOS[0]] * 100)
    monkeypatch.undo()
    result = pfv(PHOTOS * 2)
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    with pytest.raises(PFVError, match="the 3 components of 6 images at 224 x 224 needs about"):
        result.components


def test_many_components_are_drawn_from_the_first_three(tmp_path):
    out = tmp_path / "o"
    assert main(["explain", "mobilenet_v2", *PHOTOS, "--out", str(out), "--components", "100", "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["options"]["n_components"] == 100
    assert np.asarray(Image.open(out / "images" / f"{Path(PHOTOS[0]).stem}_components.png")).std() > 5


@pytest.fixture(scope="module")
def basis_path(tmp_path_factory):
    return PFV().fit(bundled.sample_images()[:3]).save_basis(tmp_path_factory.mktemp("basis") / "basis.npz")


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("hierarchical_text", lambda h, a: h.update(hierarchical="false"), "hierarchical is 'false', not a bool"),
        ("negative_images", lambda h, a: h.update(images=-7), "-7 images"),
        ("zero_prescale", lambda h, a: a["scalars"].__setitem__(1, 0.0), "prescale 0"),
        ("zero_spread", lambda h, a: a["scalars"].__setitem__(3, 0.0), "spread 0"),
        ("no_activation_values", lambda h, a: a["scalars"].__setitem__(6, 0.0), "0 activation values"),
        ("huge_components", lambda h, a: h.update(n_components=10**9, channels=10**9), "1000000000 components"),
        ("old_format", lambda h, a: h.update(version=1), "fit the basis again"),
        ("tiny_clip", lambda h, a: h.update(n_sigma=1e-300), "n_sigma 1e-300"),
    ],
)
def test_damaged_basis_files_are_refused(basis_path, tmp_path, name, change, message):
    damaged = write_basis(tmp_path / f"{name}.npz", basis_path, change)
    with pytest.raises(PFVError, match=message) as info:
        load_basis(damaged)
    assert "\n" not in str(info.value)


def test_a_basis_header_nested_too_deeply_is_refused(tmp_path, basis_path):
    with np.load(basis_path) as data:
        arrays = {k: data[k] for k in data.files if k != "header"}
    deep = ("[" * 200_000 + "]" * 200_000).encode()
    np.savez(tmp_path / "deep.npz", header=np.frombuffer(deep, dtype=np.uint8), **arrays)
    with pytest.raises(PFVError, match="not a readable basis file"):
        load_basis(tmp_path / "deep.npz")


def test_a_basis_zip_bomb_is_refused_unread(tmp_path, basis_path):
    bomb = tmp_path / "bomb.npz"
    shutil.copy(basis_path, bomb)
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as archive, archive.open("padding.npy", "w", force_zip64=True) as f:
        block = bytes(1 << 24)
        for _ in range(80):  # 1.25 GiB of zeros, a few MB on disk
            f.write(block)
    assert bomb.stat().st_size < 8 << 20
    with pytest.raises(PFVError, match="declares more data than a basis holds"):
        load_basis(bomb)


def test_tapped_metadata_naming_the_wrong_outputs_is_refused(tmp_path):
    export("mobilenet_v2", tmp_path / "tapped.onnx")
    model = onnx.load(str(tmp_path / "tapped.onnx"))
    entry = next(p for p in model.metadata_props if p.key == "pfv_onnx")
    recorded = json.loads(entry.value)
    entry.value = json.dumps({**recorded, "final": "logits"})  # a (B, 1000) output read as F_N
    onnx.save(model, str(tmp_path / "two_d.onnx"))
    with pytest.raises(ModelError, match="'logits', read as F_N, has shape \\[2, 1000\\]"):
        PFV(tmp_path / "two_d.onnx")(PHOTOS[:2])
    entry.value = json.dumps({**recorded, "final": "no_such_output"})
    onnx.save(model, str(tmp_path / "missing.onnx"))
    with pytest.raises(ModelError, match="not one of its outputs"):
        PFV(tmp_path / "missing.onnx")
    entry.value = "[" * 200_000 + "]" * 200_000  # deeper than Python's json follows
    onnx.save(model, str(tmp_path / "deep.onnx"))
    proc = run_cli("inspect", str(tmp_path / "deep.onnx"), timeout=60)
    assert proc.returncode == 2 and "metadata is unreadable" in one_line(proc.stderr)


def test_class_names_end_only_at_a_line_feed(tmp_path, capsys):
    """A form feed, NEL or U+2028 inside a name is part of it: with one line missing, the names are one
    short and refused, instead of every later class taking the next one's name."""
    names = bundled.imagenet_labels()
    assert parse_labels("\r\n".join(names) + "\r\n\r\n", "crlf") == names
    with pytest.raises(PFVError, match="holds a carriage return"):  # old Mac line ends: not one long name
        parse_labels("\r".join(names), "cr")
    out = tmp_path / "report"
    for k, breaker in enumerate(["\f", "\x85", "\u2028"]):
        text = "\n".join([*names[:3], names[3] + breaker + names[4], *names[5:]])
        labels = tmp_path / f"labels_{k}.txt"
        labels.write_text(text, encoding="utf-8")
        assert main(["explain", "mobilenet_v2", PHOTOS[0], "--labels", str(labels), "--out", str(out), "--quiet"]) == 2
        assert "are 999, the model gives 1000 classes" in one_line(capsys.readouterr().err) and not out.exists()
    model = onnx.load(str(bundled.model_path()))
    entry = next(p for p in model.metadata_props if p.key == "labels")
    entry.value = text  # the same names in the model's metadata
    onnx.save(model, str(tmp_path / "named.onnx"))
    assert main(["explain", str(tmp_path / "named.onnx"), PHOTOS[0], "--out", str(out), "--quiet"]) == 2
    assert "(model metadata) are 999, the model gives 1000 classes" in one_line(capsys.readouterr().err) and not out.exists()
    with pytest.raises(PFVError, match="a class name holds a line break"):  # it would be two names in the metadata
        export("mobilenet_v2", tmp_path / "broken.onnx", labels=[*names[:999], "tail\nend"])
    assert not (tmp_path / "broken.onnx").exists()


def test_sanity_randomises_layers_whose_nodes_have_no_names(tmp_path):
    model = onnx.load(str(bundled.model_path()))
    for node in model.graph.node:
        node.name = ""
    onnx.save(model, str(tmp_path / "unnamed.onnx"))
    out = tmp_path / "s"
    main(["sanity", str(tmp_path / "unnamed.onnx"), *PHOTOS[:2], "--out", str(out), "--steps", "2", "--quiet"])
    cascade = json.loads((out / "summary.json").read_text())["cascade"]
    assert cascade[0]["randomised"] == 1 and cascade[0]["spearman"] == pytest.approx(1.0)  # only the classifier
    assert cascade[0]["from_layer"] == "Gemm #53"


# ---- hangs: a run that never ends, a scheduler that never answers --------------------------------------


def loop_model(path: Path) -> Path:
    """A small CNN whose head runs a Loop of a trillion steps."""
    from onnx import TensorProto, helper, numpy_helper

    net = graphs.Net()
    features = net.conv(net.maxpool(net.conv("image", 3, 8)), 8, 16, stride=2)
    logits = net.op("MatMul", [net.op("Flatten", [net.op("GlobalAveragePool", [features])], axis=1), net.const(np.ones((16, 5), np.float32))])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)],
    )
    net.inits += [numpy_helper.from_array(np.array(10**12, np.int64), "trips"), numpy_helper.from_array(np.array(True), "go")]
    net.nodes.append(helper.make_node("Loop", ["trips", "go", logits], ["scores"], body=body))
    onnx.save(net.model([graphs.image()], [graphs.output("scores", ["N", 5])], opset=17), str(path))
    return path


def test_ctrl_c_stops_a_forward_pass_that_never_ends(tmp_path):
    model = loop_model(tmp_path / "loop.onnx")
    # Ctrl-C as a terminal sends it, even where the suite itself runs with SIGINT ignored (a background job).
    proc = subprocess.Popen([sys.executable, "-m", "pfv_onnx", "explain", str(model), PHOTOS[0], "--out", str(tmp_path / "o"), "--preset", "imagenet"],
                            stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    journal = tmp_path / "o" / ".pfv-run.jsonl"
    deadline = time.monotonic() + 60
    while not journal.exists() and time.monotonic() < deadline:  # the run has started: the forward pass comes next
        time.sleep(0.2)
    time.sleep(2)  # running the Loop
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)  # the kernel may deliver it to any of the process's threads
    stopped = time.monotonic()
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()  # never left running for the tests after it
    assert proc.returncode == 130 and time.monotonic() - stopped < 10
    assert one_line(err) == "pfv-onnx: interrupted: run the same command again to resume"


def test_a_dask_scheduler_that_never_answers_is_given_up(monkeypatch):
    from pfv_onnx.analyses import fit as fitting

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    monkeypatch.setattr(fitting, "DASK_CONNECT_TIMEOUT_S", 1)
    started = time.monotonic()
    with pytest.raises(PFVError, match="did not answer within 1 s"):
        PFV().fit(PHOTOS[:2], dask=f"tcp://127.0.0.1:{server.getsockname()[1]}")
    assert time.monotonic() - started < 30
    server.close()


def test_the_lock_file_is_never_followed_or_opened_unless_regular(tmp_path):
    target = tmp_path / "elsewhere"
    for kind in ("fifo", "link"):
        out = tmp_path / kind
        out.mkdir()
        if kind == "fifo":
            os.mkfifo(out / LOCK)
        else:
            (out / LOCK).symlink_to(target)
        proc = run_cli("explain", "mobilenet_v2", PHOTOS[0], "--out", str(out), timeout=60)
        assert proc.returncode == 2 and LOCK in one_line(proc.stderr), kind
    assert not target.exists()


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


def test_weights_the_identity_must_see(tmp_path):
    """Weights in sparse initializers and in the model's own functions are part of what a basis binds to."""
    from onnx import helper, numpy_helper

    from pfv_onnx.graph import features_sha256

    def sparse_model(scale: float) -> onnx.ModelProto:
        model, taps, final = graphs.vgg_like()
        first = next(n for n in model.graph.node if n.op_type == "Conv")
        weight = next(t for t in model.graph.initializer if t.name == first.input[1])
        values = numpy_helper.to_array(weight).ravel() * scale
        model.graph.initializer.remove(weight)
        indices = numpy_helper.from_array(np.arange(values.size, dtype=np.int64), "sparse_indices")
        model.graph.sparse_initializer.append(helper.make_sparse_tensor(numpy_helper.from_array(values, weight.name), indices, list(weight.dims)))
        return model, [*taps, final]

    (a, tensors), (b, _) = sparse_model(1.0), sparse_model(2.0)
    assert features_sha256(a, None, tensors) != features_sha256(b, None, tensors)

    def function_model(value: float) -> onnx.ModelProto:
        body = [helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array(value, np.float32))),
                helper.make_node("Mul", ["x", "k"], ["y"])]
        scale = helper.make_function("local", "Scale", ["x"], ["y"], body, [helper.make_opsetid("", 17)])
        net = graphs.Net()
        features = net.conv(net.maxpool(net.conv("image", 3, 8)), 8, 8, stride=2)
        net.nodes.append(helper.make_node("Scale", [features], ["scaled"], domain="local"))
        pooled = net.op("GlobalAveragePool", ["scaled"])
        model = helper.make_model(
            helper.make_graph(net.nodes, "f", [graphs.image()], [graphs.output(pooled, ["N", 8, 1, 1])], net.inits),
            opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)], functions=[scale],
        )
        return model, ["scaled"]

    (a, tensors), (b, _) = function_model(1.0), function_model(3.0)
    assert features_sha256(a, None, tensors) != features_sha256(b, None, tensors)


def test_memory_left_in_a_container_counts(tmp_path, monkeypatch):
    (tmp_path / "max").write_text("1073741824\n")
    (tmp_path / "current").write_text("805306368\n")
    monkeypatch.setattr(memory, "CGROUP_FILES", ((str(tmp_path / "max"), str(tmp_path / "current")),))
    assert memory.available_bytes() == 256 << 20
    (tmp_path / "max").write_text("max\n")
    assert memory.available_bytes() == memory._system_available()


def test_export_checks_the_input_size_too(tmp_path):
    huge = resized_input(graphs.dynamic_size()[0], ["N", 3, "H", "W"])
    with pytest.raises(ModelError, match="over the limit"):
        export(huge, tmp_path / "huge.onnx", size=(50000, 50000))
    assert not (tmp_path / "huge.onnx").exists()
