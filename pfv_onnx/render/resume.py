"""Whether a run's journal entry records a batch as written whole, so that a run resumed after a stop does
not write it again: the entry in the form ``pfv-onnx explain`` records it, and every picture it names there
(:func:`~pfv_onnx.render.report.write_batch`'s files) on disk. An entry that is anything else is done again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def batch_finished(entry: Any, index: int, sources: dict[str, str], out: Path) -> bool:
    """Whether a journal entry records batch ``index`` (``sources``: its inputs' names and paths) as
    finished whole: in the form :func:`pfv_onnx.apps.explain.explain` records it, each input written or skipped, every picture it
    names there. Anything else is done again."""
    try:
        images, skipped, timings, batch = entry["images"], entry["skipped"], entry["timings"], entry["batch"]
        if not (isinstance(images, list) and isinstance(skipped, list) and isinstance(timings, dict)):
            return False
        if len(images) + len(skipped) != len(sources) or not all(_number(v) for v in timings.values()):
            return False
        if not all(isinstance(s, dict) and s.get("source") in sources.values() and isinstance(s.get("reason"), str) for s in skipped):
            return False
        if not all(_image_entry(image, index, sources, out) for image in images):
            return False
        if not images:
            return batch is None
        return (
            isinstance(batch, dict) and batch.get("number") == index + 1 and batch.get("images") == [i["name"] for i in images]
            and isinstance(batch.get("solver"), str) and isinstance(batch.get("explained_variance_ratio"), list)
            and all(_number(r) for r in batch["explained_variance_ratio"]) and _picture_file(out, batch.get("mosaic"))
        )
    except (KeyError, TypeError, AttributeError):
        return False


def _image_entry(image: Any, index: int, sources: dict[str, str], out: Path) -> bool:
    """Whether a journal's image entry is one :func:`~pfv_onnx.render.report.write_batch` wrote for this input."""
    top = image.get("top5", [])
    return (
        sources.get(image.get("name")) == image.get("source") and image.get("batch") == index + 1
        and isinstance(image.get("files"), dict) and all(_picture_file(out, f) for f in image["files"].values())
        and isinstance(top, list) and all(
            isinstance(t, dict) and isinstance(t.get("class"), int) and isinstance(t.get("label"), (str, type(None))) and _number(t.get("probability"))
            for t in top
        )
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _picture_file(out: Path, relative: Any) -> bool:
    """Whether ``relative`` names a written picture under ``out/images`` or ``out/mosaics``."""
    parts = Path(str(relative)).parts
    if len(parts) != 2 or parts[0] not in ("images", "mosaics") or not parts[1].endswith(".png"):
        return False
    path = out / relative
    return path.is_file() and path.stat().st_size > 0
