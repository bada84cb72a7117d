"""Errors a user can act on. The command line prints them as one line and exits with ``exit_code``."""

from __future__ import annotations

import os
import sys
import warnings

# The package's own files: a warning points past them, at the caller's line.
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


class Advice:
    """A message that speaks to a Python caller: its advice names keyword arguments (``overwrite=True``).
    ``flags`` maps each such wording to the command line's (``{"overwrite=True": "--overwrite"}``), and
    :meth:`on_command_line` is the message the command line prints."""

    def __init__(self, *args: object, flags: dict[str, str] | None = None):
        super().__init__(*args)
        self.flags = flags or {}

    def on_command_line(self) -> str:
        """The message with the advice in flags. Advice comes last: the last occurrence of each wording is the
        one replaced, never a path or a name that happens to hold the same text."""
        text = str(self)
        for keyword, flag in self.flags.items():
            before, found, after = text.rpartition(keyword)
            text = before + flag + after if found else text
        return text


class PFVError(Advice, Exception):
    """Base class: bad input from the user (a model, an image, an option), never a bug of ours. Its advice
    speaks Python; the command line prints :meth:`~Advice.on_command_line`."""

    exit_code = 2


class OutputExistsError(PFVError):
    """An output (a folder or a file) holds something already: replaced only when the caller says so
    (``overwrite=True`` in Python, ``--overwrite`` on the command line). ``problem`` says what it holds
    (``"is not empty"``), ``otherwise`` what else the caller may do (``", or another folder"``)."""

    def __init__(self, path: object, problem: str, otherwise: str):
        super().__init__(f"{path}: {problem} (use overwrite=True{otherwise})", flags={"overwrite=True": "--overwrite"})


class ModelError(PFVError):
    """The model cannot be read, or has nothing PFV can tap."""


class LayerError(PFVError):
    """A layer (tensor) name the user gave does not exist or cannot be tapped."""


class ImageError(PFVError):
    """An image cannot be decoded or used."""


class RuntimeMissingError(PFVError):
    """No onnxruntime package is installed."""


class PFVWarning(Advice, UserWarning):
    """Something PFV went on with but the user should know; the command line prints it as one line
    (:meth:`~Advice.on_command_line`)."""


class PresetWarning(PFVWarning):
    """The model does not say how its pixels are normalised, so a default was assumed."""


class FolderWarning(PFVWarning):
    """A folder holds images and subfolders of images: its own images were read, the subfolders not."""


def warn_caller(message: str, category: type[PFVWarning], flags: dict[str, str] | None = None) -> None:
    """Warn with ``message`` (its advice in Python, ``flags`` as :class:`Advice` takes them) at the line that
    called into pfv_onnx (the first frame outside the package), as Python reports it to the user: not at the
    line of pfv_onnx that noticed it, however deep that is."""
    warning = category(message, flags=flags)
    if sys.version_info >= (3, 12):
        warnings.warn(warning, skip_file_prefixes=(_PACKAGE,))
        return
    frame, level = sys._getframe(1), 2  # stacklevel 2 is this function's caller
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(warning, stacklevel=level if frame is not None else 2)


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (or its type), shortened: for one-line errors."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]
