"""The README's Quick start: exactly two commands, the second of which CI runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quick_start_is_two_commands_demo_then_tests():
    demo, tests = quick_start()
    assert "pfv-onnx demo" in demo and "pip install -e '.[cpu]'" in demo
    assert "pytest" in tests and "'.[cpu,test]'" in tests


def test_ci_runs_the_readme_test_command():
    printed = subprocess.run([str(ROOT / ".ci" / "run"), "--print-command"], capture_output=True, text=True, check=True)
    assert printed.stdout.strip() == quick_start()[1]
