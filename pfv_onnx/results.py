"""What PFV's analyses return, as a user holds them: each result shows itself (a short repr, an inline
HTML view in a notebook) and ``save(folder)`` writes what its command writes.

Each extends its analysis's result (:mod:`pfv_onnx.analyses`), which holds the data and writes nothing, with
the page and view of :mod:`pfv_onnx.render`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from .analyses.atlas import Atlas
from .analyses.colouring import BatchResult
from .analyses.debug import Debug
from .analyses.evaluate import Evaluation
from .analyses.sanity import Sanity
from .analyses.survey import Survey
from .errors import PFVError
from .options import PICTURES
from .render.atlas import write_atlas
from .render.debug import debug_html, write_debug
from .render.evaluation import evaluation_html, evaluation_text, write_evaluation
from .render.notebook import atlas_html, atlas_text, result_html, result_text, to_pil
from .render.report import build_summary, save_page, unique_names, write_batch, write_summary
from .render.sanity import sanity_html, write_sanity
from .render.survey import survey_html, write_survey
from .util.files import output_folder

Found = TypeVar("Found")


def promote(result_class: type[Found], found: Any) -> Found:
    """``found`` (an analysis's dataclass) as ``result_class``, its subclass here, sharing its fields."""
    return result_class(**{field.name: getattr(found, field.name) for field in dataclasses.fields(found)})


class PFVResult(BatchResult):
    """PFV of one analysis batch (:class:`~pfv_onnx.analyses.colouring.BatchResult`), which can save and show itself.

    >>> import tempfile
    >>> from pfv_onnx import PFV
    >>> from pfv_onnx.images import bundled
    >>> result = PFV()(bundled.sample_images()[:2])
    >>> result
    PFV of 2 images: astronaut, chelsea
      model ...mobilenet_v2.onnx
      rgb (2, 224, 224, 3) float32, weighting map (2, 224, 224)
      ...
    >>> [picture.size for picture in result.to_pil("overlay")]
    [(224, 224), (224, 224)]
    >>> summary = result.save(tempfile.mkdtemp())   # pictures, mosaic, summary.json, index.html
    >>> [image["name"] for image in summary["images"]]
    ['astronaut', 'chelsea']
    """

    def save(self, out: str | Path, overwrite: bool = False) -> dict[str, Any]:
        """Write the pictures of this batch, its mosaic, ``summary.json`` and ``index.html`` to the folder
        ``out`` (layout in :mod:`pfv_onnx.render.report`; images of the same name get ``_2``, ``_3``, ... as on the
        command line); return the summary. A folder that holds anything is refused unless ``overwrite``."""
        out = output_folder(out, overwrite)
        unique = dataclasses.replace(self, names=unique_names(self.names))
        written = write_batch(out, unique, 0)
        summary = build_summary(self.description, [written.batch], written.images, {**self.timings, **written.wait()})
        write_summary(out, summary)
        return summary

    def to_pil(self, kind: str = "pfv") -> list[Image.Image]:
        """The pictures of ``kind`` (``pfv``, ``overlay``, ``activation`` or ``components``) as PIL images."""
        if kind not in PICTURES:
            raise PFVError(f"unknown picture kind {kind!r} (choose from {', '.join(PICTURES)})")
        return to_pil(self, kind)

    def show(self) -> None:
        """Show the inputs over their PFV pictures and the colour key: inline in a notebook, else in an image viewer."""
        try:
            from IPython.display import HTML, display
        except ImportError:
            display = None
        if display is not None and _in_notebook():
            display(HTML(self._repr_html_()))
            return
        pictures = self.to_pil("overlay" if self.images is not None else "pfv")
        strip = Image.new("RGB", (sum(p.width for p in pictures), max(p.height for p in pictures)), "white")
        x = 0
        for picture in pictures:
            strip.paste(picture, (x, 0))
            x += picture.width
        strip.show()

    def __repr__(self) -> str:
        return result_text(self)

    def _repr_html_(self) -> str:
        return result_html(self)


class _Page:
    """A result whose command writes a page: ``save`` writes it with ``_write`` (the page writer of
    :mod:`pfv_onnx.render`), ``_repr_html_`` shows ``_html``."""

    _write: Callable[[Path, Any], None]
    _html: Callable[[Any], str]
    summary: dict[str, Any]

    def save(self, out: str | Path, overwrite: bool = False) -> dict[str, Any]:
        """Write what the command writes (its pictures, ``summary.json`` and ``index.html``) to the folder
        ``out``; return the summary. A folder that holds anything is refused unless ``overwrite``."""
        return save_page(type(self)._write, self, out, overwrite)

    def _repr_html_(self) -> str:
        return type(self)._html(self)


SAVE_LINE = "\n  .save(folder) writes the page; .summary holds the data"


class AtlasResult(_Page, Atlas):
    """An atlas (:class:`~pfv_onnx.analyses.atlas.Atlas`): the cards, ``summary.json``, ``index.html`` and the
    basis when the atlas fitted it (layout in :mod:`pfv_onnx.render.atlas`)."""

    _write, _html = staticmethod(write_atlas), staticmethod(atlas_html)

    def __repr__(self) -> str:
        return atlas_text(self)


class EvaluationResult(_Page, Evaluation):
    """What :func:`pfv_onnx.evaluate` measured (:class:`~pfv_onnx.analyses.evaluate.Evaluation`); its page
    is :func:`~pfv_onnx.render.evaluation.write_evaluation`'s."""

    _write, _html = staticmethod(write_evaluation), staticmethod(evaluation_html)

    def __repr__(self) -> str:
        return evaluation_text(self)


class DebugResult(_Page, Debug):
    """Why an image was misclassified (:class:`~pfv_onnx.analyses.debug.Debug`): its page is
    :func:`~pfv_onnx.render.debug.write_debug`'s."""

    _write, _html = staticmethod(write_debug), staticmethod(debug_html)

    def __repr__(self) -> str:
        return Debug.__repr__(self) + SAVE_LINE


class SurveyResult(_Page, Survey):
    """Which classes a dataset's features separate (:class:`~pfv_onnx.analyses.survey.Survey`): its page is
    :func:`~pfv_onnx.render.survey.write_survey`'s."""

    _write, _html = staticmethod(write_survey), staticmethod(survey_html)

    def __repr__(self) -> str:
        return Survey.__repr__(self) + SAVE_LINE


class SanityResult(_Page, Sanity):
    """The randomisation test (:class:`~pfv_onnx.analyses.sanity.Sanity`): its page is
    :func:`~pfv_onnx.render.sanity.write_sanity`'s."""

    _write, _html = staticmethod(write_sanity), staticmethod(sanity_html)

    def __repr__(self) -> str:
        return Sanity.__repr__(self) + SAVE_LINE


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "Terminal" not in type(shell).__name__
