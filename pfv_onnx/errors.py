"""Errors a user can act on. The command line prints them as one line and exits with ``exit_code``."""

from __future__ import annotations


class PFVError(Exception):
    """Base class: bad input from the user (a model, an image, an option), never a bug of ours."""

    exit_code = 2


class ModelError(PFVError):
    """The model cannot be read, or has nothing PFV can tap."""


class LayerError(PFVError):
    """A layer (tensor) name the user gave does not exist or cannot be tapped."""


class ImageError(PFVError):
    """An image cannot be decoded or used."""


class RuntimeMissingError(PFVError):
    """No onnxruntime package is installed."""


class PFVWarning(UserWarning):
    """Something PFV went on with but the user should know; the command line prints it as one line."""


class PresetWarning(PFVWarning):
    """The model does not say how its pixels are normalised, so a default was assumed."""


class FolderWarning(PFVWarning):
    """A folder holds images and subfolders of images: its own images were read, the subfolders not."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (or its type), shortened: for one-line errors."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:limit]
