"""What ships with pfv-onnx: the ONNX models of ``models/``, their labels, and the sample photos."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import PFVError
from .preprocess import IMAGE_SUFFIXES

DEFAULT_MODEL = "mobilenet_v2"
MODELS = ("mobilenet_v2", "efficientnet_lite0")
LABELS_FILE = "imagenet_labels.txt"


def _models_dir() -> Path:
    # models/ is installed as the data package pfv_onnx.models (see pyproject.toml).
    return Path(str(resources.files("pfv_onnx.models")))


def model_path(name: str = DEFAULT_MODEL) -> Path:
    """Path of a bundled model by name (``mobilenet_v2`` or ``efficientnet_lite0``)."""
    if name not in MODELS:
        raise PFVError(f"no bundled model {name!r} (bundled: {', '.join(MODELS)})")
    path = _models_dir() / f"{name}.onnx"
    if not path.is_file():
        raise PFVError(f"bundled model file missing: {path}")
    return path


def resolve_model(model: str | Path) -> str | Path:
    """A bundled model's name becomes its path; anything else passes through."""
    return model_path(str(model)) if str(model) in MODELS else model


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet-1k class names in class-index order."""
    return (_models_dir() / LABELS_FILE).read_text(encoding="utf-8").splitlines()


def sample_images() -> list[Path]:
    """The bundled sample photos (see ``pfv_onnx/samples/ATTRIBUTION.md``), sorted by name."""
    folder = Path(str(resources.files("pfv_onnx") / "samples"))
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def sample_image(stem: str) -> Path:
    for path in sample_images():
        if path.stem == stem:
            return path
    raise PFVError(f"no bundled sample photo {stem!r}")


def relevance_set() -> tuple[Path, Path]:
    """The folders of the shipped cut-out objects and background photos for ``pfv-onnx evaluate`` (see
    ``pfv_onnx/samples/relevance/ATTRIBUTION.md``)."""
    folder = Path(str(resources.files("pfv_onnx") / "samples" / "relevance"))
    return folder / "objects", folder / "backgrounds"
