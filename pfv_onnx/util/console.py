"""What pfv-onnx prints: one place that keeps text from files and models from steering the terminal."""

from __future__ import annotations

import sys
import unicodedata
from typing import TextIO


def printable(text: str) -> str:
    """``text`` with every control or format character (an ANSI escape, a carriage return, a bidi override)
    and every byte of a file name that is not UTF-8 shown as its escape sequence, so a file or class name
    cannot move the cursor, recolour the terminal or hide what follows."""
    return "".join(
        ch if ch == "\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs") else ch.encode("unicode_escape").decode("ascii")
        for ch in str(text)
    )


def plural(count: int, word: str) -> str:
    """``1 image``, ``2 images``, ``3 batches``, ``2 classes``: English plurals of the words pfv-onnx counts."""
    if count == 1:
        return f"{count} {word}"
    return f"{count} {word}es" if word.endswith(("s", "sh", "ch", "x")) else f"{count} {word}s"


def say(text: str, stream: TextIO | None = None) -> None:
    """Print one line (to stdout, or ``stream``) made :func:`printable`."""
    print(printable(text), file=stream or sys.stdout)


def warn(text: str) -> None:
    """:func:`say` on stderr, as ``pfv-onnx: <text>``."""
    say(f"pfv-onnx: {text}", sys.stderr)
