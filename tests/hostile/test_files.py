"""Other files a user names (class names, anything read bounded), usage errors and the environment (missing
onnxruntime, a scheduler that never answers, a container's memory): one line and a defined exit code."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import onnx
import pytest

from pfv_onnx import PFV, PFVError, export
from pfv_onnx.cli import INTERNAL_ERROR, main
from pfv_onnx.images import bundled
from pfv_onnx.images.labels import parse_labels
from pfv_onnx.util import memory

from helpers.cli import assert_one_line_error, one_line, run_cli

PHOTOS = [str(p) for p in bundled.sample_images()[:3]]


def test_cli_usage_errors_exit_2(tmp_path):
    assert_one_line_error(run_cli("export", "a.onnx", "b.onnx", "--bogus"), 2, "unrecognized arguments: --bogus")
    assert_one_line_error(run_cli("export"), 2, "required: src, dst")
    assert_one_line_error(run_cli("frobnicate"), 2, "invalid choice")
    existing = tmp_path / "exists.onnx"
    existing.write_bytes(b"keep me")
    assert_one_line_error(run_cli("export", "mobilenet_v2", str(existing)), 2, "--overwrite")
    assert existing.read_bytes() == b"keep me"
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    assert_one_line_error(run_cli("demo", "--out", str(a_file)), 2, "not a folder")


def test_missing_onnxruntime_names_both_extras(tmp_path):
    out = str(tmp_path / "unused")
    code = f"import sys; sys.modules['onnxruntime'] = None\nfrom pfv_onnx.cli import main\nsys.exit(main(['demo', '--out', {out!r}]))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, 2, "pfv-onnx[cpu]")
    assert "pfv-onnx[gpu]" in proc.stderr


def test_main_returns_exit_codes_in_process(tmp_path):
    assert main(["export", str(tmp_path / "missing.onnx"), str(tmp_path / "x.onnx")]) == 2


def test_files_a_user_names_are_read_bounded(tmp_path, basis_file):
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
        proc = run_cli("explain", "mobilenet_v2", PHOTOS[0], "--basis", str(basis_file), "--atlas", str(atlas), "--out", str(out), timeout=60)
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


def test_a_dask_scheduler_that_never_answers_is_given_up(monkeypatch):
    from pfv_onnx.analyses import on_dask

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []
    threading.Thread(target=lambda: held.append(server.accept()), daemon=True).start()
    monkeypatch.setattr(on_dask, "DASK_CONNECT_TIMEOUT_S", 1)
    started = time.monotonic()
    with pytest.raises(PFVError, match="did not answer within 1 s"):
        PFV().fit(PHOTOS[:2], dask=f"tcp://127.0.0.1:{server.getsockname()[1]}")
    assert time.monotonic() - started < 30
    server.close()


def test_memory_left_in_a_container_counts(tmp_path, monkeypatch):
    (tmp_path / "max").write_text("1073741824\n")
    (tmp_path / "current").write_text("805306368\n")
    monkeypatch.setattr(memory, "CGROUP_FILES", ((str(tmp_path / "max"), str(tmp_path / "current")),))
    assert memory.available_bytes() == 256 << 20
    (tmp_path / "max").write_text("max\n")  # no limit: the system's available memory (fixed here: it moves as other tests run)
    monkeypatch.setattr(memory, "_system_available", lambda: 5 << 30)
    assert memory.available_bytes() == 5 << 30
