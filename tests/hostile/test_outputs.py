"""Output folders, journals and locks: a run never writes into a folder in use or over what it was not asked
to replace, never inside the images it reads, and an interrupted run leaves whole files and resumes."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest

from pfv_onnx import PFV, Featurizer, PFVError
from pfv_onnx.apps import explain as explain_app
from pfv_onnx.cli import main
from pfv_onnx.images import bundled
from pfv_onnx.util import files
from pfv_onnx.util.journal import LOCK

from helpers.cli import one_line, run_cli

PHOTOS = [str(p) for p in bundled.sample_images()[:3]]
DATASET = bundled.sample_images()[0].parent / "gcompris5"


def interrupt_second_batch(monkeypatch) -> None:
    """Ctrl-C during the forward pass of the second batch of a call to explain."""
    real_forward = Featurizer.forward
    calls = {"n": 0}

    def interrupted_forward(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(Featurizer, "forward", interrupted_forward)


@pytest.mark.parametrize("where", ["writing a file", "running a batch"])
def test_interrupted_run_leaves_whole_files_and_resumes(tmp_path, monkeypatch, where):
    photos = [str(p) for p in bundled.sample_images()]
    reference = tmp_path / "reference"
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(reference), "--batch", "3", "--quiet"]) == 0

    calls = {"n": 0}
    if where == "writing a file":
        # Half of the 20th file reaches the disk, then Ctrl-C (in a writer thread).
        real_write_bytes = Path.write_bytes

        def interrupted_write(self, data):
            calls["n"] += 1
            if calls["n"] == 20:
                real_write_bytes(self, data[: len(data) // 2])
                raise KeyboardInterrupt
            return real_write_bytes(self, data)

        monkeypatch.setattr(Path, "write_bytes", interrupted_write)
    else:
        interrupt_second_batch(monkeypatch)  # in the main thread, the first batch still being written
    out = tmp_path / "run"
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--quiet"]) == 130
    monkeypatch.undo()
    leftovers = [p for p in out.rglob("*") if p.is_file()]
    assert leftovers and not any(p.name.endswith(".tmp") for p in leftovers) and not (out / "summary.json").exists()
    for p in leftovers:
        if p.suffix == ".png":
            assert p.read_bytes() == (reference / p.relative_to(out)).read_bytes()  # whole, and right

    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--quiet"]) == 0
    assert not (out / ".pfv-run.jsonl").exists()
    for picture in reference.rglob("*.png"):
        assert (out / picture.relative_to(reference)).read_bytes() == picture.read_bytes()
    a = json.loads((reference / "summary.json").read_text())
    b = json.loads((out / "summary.json").read_text())
    assert a["images"] == b["images"] and a["batches"] == b["batches"]


def test_the_journal_grows_a_line_per_batch_and_survives_a_cut_last_line(tmp_path, monkeypatch):
    photos = [str(p) for p in bundled.sample_images()]
    out = tmp_path / "run"

    def interrupted_summary(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(explain_app, "write_summary", interrupted_summary)  # every batch done, no report yet
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--quiet"]) == 130
    monkeypatch.undo()
    journal = out / ".pfv-run.jsonl"
    lines = journal.read_text().splitlines()
    assert len(lines) == 4 and "key" in json.loads(lines[0]) and sorted(json.loads(x)["index"] for x in lines[1:]) == [0, 1, 2]
    kept = [lines[0]] + [x for x in lines[1:] if json.loads(x)["index"] == 0]
    journal.write_text("\n".join(kept) + '\n{"index": 1, "batch": {"ind')  # as if cut while recording batch 1
    (out / "images" / f"{Path(photos[4]).stem}_pfv.png").unlink()  # batch 1 is done again, so this comes back
    monkeypatch.setattr(explain_app, "write_summary", interrupted_summary)  # interrupted once more
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--quiet"]) == 130
    monkeypatch.undo()
    lines = journal.read_text().splitlines()  # the cut line is gone: what the resumed run added is kept
    assert len(lines) == 4 and sorted(json.loads(x)["index"] for x in lines[1:]) == [0, 1, 2]
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [b["number"] for b in summary["batches"]] == [1, 2, 3] and len(summary["images"]) == len(photos)
    assert (out / "images" / f"{Path(photos[4]).stem}_pfv.png").exists() and not journal.exists()


def test_resuming_with_other_options_is_refused(tmp_path, monkeypatch):
    photos = [str(p) for p in bundled.sample_images()]
    interrupt_second_batch(monkeypatch)
    out = tmp_path / "run"
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--quiet"]) == 130
    monkeypatch.undo()
    final = PFV().taps[-1]  # another final layer: another analysis
    proc_args = ["explain", "mobilenet_v2", *photos, "--out", str(out), "--batch", "3", "--final", final, "--quiet"]
    assert main(proc_args) == 2
    assert main(proc_args + ["--overwrite"]) == 0


def test_pictures_option(tmp_path):
    photos = [str(p) for p in bundled.sample_images()[:3]]
    out = tmp_path / "two"
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(out), "--pictures", "pfv,overlay", "--quiet"]) == 0
    names = sorted(p.name for p in (out / "images").iterdir())
    assert names == sorted(f"{Path(p).stem}_{kind}.png" for p in photos for kind in ("pfv", "overlay"))
    summary = json.loads((out / "summary.json").read_text())
    assert all(set(image["files"]) == {"pfv", "overlay"} for image in summary["images"])
    assert main(["explain", "mobilenet_v2", *photos, "--out", str(tmp_path / "bad"), "--pictures", "pfv,nope"]) == 2


def test_existing_outputs_are_not_overwritten(tmp_path):
    photo_path = str(bundled.sample_images()[0])
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(PFVError, match="is not empty"):
        from pfv_onnx.apps.explain import explain

        explain(PFV(), [photo_path], out, show_progress=False)
    assert main(["explain", "mobilenet_v2", photo_path, "--out", str(out), "--overwrite", "--quiet"]) == 0
    assert (out / "notes.txt").read_text() == "mine"
    assert main(["explain", "mobilenet_v2", photo_path, "--out", str(out), "--quiet"]) == 2  # a finished report


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


def test_an_output_that_holds_an_input_is_refused(tmp_path, basis_file, capsys):
    """An output folder that is or holds an input (an image, a basis, an atlas, a dataset, masks): one line,
    exit 2, nothing written or replaced, even with --overwrite."""
    photos, dataset, atlas = tmp_path / "photos", tmp_path / "data", tmp_path / "atlas"
    for k, folder in enumerate([photos, dataset / "class0", dataset / "class1", photos / "masks"]):
        folder.mkdir(parents=True)
        shutil.copy(PHOTOS[k % 2], folder / "a.png")
    shutil.copy(basis_file, photos / "basis.npz")
    atlas.mkdir()
    (atlas / "summary.json").write_text("{}")  # an atlas's files: replacing them loses the atlas
    (atlas / "index.html").write_text("<p>atlas</p>")
    before = tree(tmp_path)
    runs = {
        "image": ["explain", "mobilenet_v2", str(photos / "a.png"), "--out", str(photos)],
        "basis": ["explain", "mobilenet_v2", PHOTOS[0], "--basis", str(photos / "basis.npz"), "--out", str(photos)],
        "atlas": ["explain", "mobilenet_v2", PHOTOS[0], "--basis", str(basis_file), "--atlas", str(atlas), "--out", str(atlas)],
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
