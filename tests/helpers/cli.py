"""The command line as a user runs it: ``python -m pfv_onnx`` in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str, timeout: float = 300, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``pfv-onnx ARGS...`` in a subprocess, with ``env`` added to the environment; its exit code and text
    output (stdout, stderr) are captured."""
    environment = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "pfv_onnx", *args], capture_output=True, text=True, timeout=timeout, env=environment)


def one_line(text: str) -> str:
    """The one line of ``text``, asserting it has exactly one and no traceback."""
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


def assert_one_line_error(proc: subprocess.CompletedProcess, code: int, text: str) -> None:
    """``proc`` exited with ``code`` after printing one ``pfv-onnx: error:`` line that contains ``text``."""
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pfv-onnx: error:") and text in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
