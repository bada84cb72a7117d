"""Class names for a model's outputs, and where they come from.

In order: names given in Python (``PFV(labels=[...])``); ``Options.labels`` (``--labels``): a text file
with one name per line, or ``imagenet`` for the bundled ImageNet-1k names; the model's metadata entry
``labels`` (``imagenet``, or the names one per line), which ``pfv-onnx export --labels`` writes. A model
that says nothing gets no names: a model with 1000 outputs is not taken for an ImageNet model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from . import bundled
from ..errors import PFVError
from ..util.files import read_file

IMAGENET = "imagenet"
METADATA_KEY = "labels"
# A labels file or entry larger than this is refused: class names are a few bytes each.
MAX_BYTES = 4 * 2**20
MAX_NAME = 200


def class_label(index: int, name: str | None) -> str:
    """How a class is shown: its name, else its index."""
    return str(name) if name is not None else str(index)


def parse_labels(text: str, where: str) -> list[str]:
    """``imagenet``, or one class name per line (``\n`` or ``\r\n``; trailing blank lines dropped), each at most
    :data:`MAX_NAME` characters."""
    if text.strip() == IMAGENET:
        return bundled.imagenet_labels()
    # Lines end at "\n" only (str.splitlines would also end them at a form feed, NEL or U+2028 inside a name,
    # shifting every later class onto the wrong name).
    names = [line.removesuffix("\r") for line in text.split("\n")]
    if any("\r" in name for name in names):  # lines ended by "\r" alone would be read as one name
        raise PFVError(f"{where}: a class name holds a carriage return (lines end with \\n or \\r\\n)")
    while names and not names[-1].strip():  # trailing blank lines
        names.pop()
    if not names:
        raise PFVError(f"{where}: holds no class names (one per line, or 'imagenet')")
    too_long = next((name for name in names if len(name) > MAX_NAME), None)
    if too_long is not None:
        raise PFVError(f"{where}: a class name is longer than {MAX_NAME} characters")
    return names


def read_labels(path: str | Path) -> list[str]:
    """The class names of a labels file, or the bundled ImageNet names for ``imagenet``."""
    if str(path) == IMAGENET:
        return bundled.imagenet_labels()
    try:
        data = read_file(path, MAX_BYTES, "a labels file")
    except OSError as exc:
        raise PFVError(f"{path}: cannot read the labels file ({exc.strerror})") from None
    try:
        return parse_labels(data.decode("utf-8"), str(path))
    except UnicodeDecodeError:
        raise PFVError(f"{path}: not UTF-8 text; a labels file holds one class name per line") from None


def resolve_labels(given: str | Path | Sequence[str] | None, option: str | None, metadata: str | None) -> tuple[list[str] | None, str]:
    """The class names and where they came from (``given``: names, a labels file or ``imagenet``;
    ``--labels``; ``model metadata``; or ``none``)."""
    if isinstance(given, (str, Path)):
        return read_labels(given), "given"
    if given is not None:
        return [str(name) for name in given], "given"
    if option is not None:
        return read_labels(option), "--labels"
    if metadata is not None:
        if len(metadata) > MAX_BYTES:
            raise PFVError(f"the model's metadata entry {METADATA_KEY!r} is larger than {MAX_BYTES // 2**20} MiB")
        return parse_labels(metadata, f"the model's metadata entry {METADATA_KEY!r}"), "model metadata"
    return None, "none"
