"""``PFV``: the object users call. A featurizer (the model side), the colouring, and a fitted basis.

>>> from pfv_onnx import PFV
>>> from pfv_onnx.images import bundled
>>> photos = bundled.sample_images()            # the photos that come with the package
>>> pfv = PFV()                                 # the bundled MobileNetV2
>>> result = pfv(photos[:2])                    # one batch: colours contrast these images
>>> result.rgb.shape, result.rgb.dtype          # in [0, 1]
((2, 224, 224, 3), dtype('float32'))

Its verbs mean what scikit-learn's mean: :meth:`PFV.fit` fits a basis on images, :meth:`PFV.transform`
colours images with it (the same colours in every batch), :meth:`PFV.fit_transform` does both on the same
images; calling a ``PFV`` is the paper's method, colours relative to the batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .analyses import evaluate as evaluation
from .analyses.atlas import atlas
from .analyses.basis import basis_of, check_fits, check_method, fit_basis, header_of, inputs_of, load_basis, method_of, save_basis
from .analyses.colouring import colour
from .analyses.debug import debug
from .analyses.sanity import STEPS, sanity
from .analyses.survey import survey
from .core import FittedBasis
from .errors import PFVError
from .images import bundled
from .options import OptionError, Options
from .results import AtlasResult, DebugResult, EvaluationResult, PFVResult, SanityResult, SurveyResult, promote
from .runtime.features import Batch, Features
from .runtime.featurizer import Featurizer, ImageLike, ModelLike
from .util.console import plural
from .util.progress import from_totals, progress_bar
from .version import __version__

Images = ImageLike | Sequence[ImageLike] | Batch


def options_given(options: Options | None, option_values: dict[str, Any]) -> tuple[Options, set[str]]:
    """The options of a call that takes an :class:`Options` and its fields as keywords (:class:`PFV`,
    :func:`pfv_onnx.export`), and the names of those the caller set (as a keyword, or away from its default)."""
    if options is not None and not isinstance(options, Options):
        raise OptionError("options", f"must be a pfv_onnx.Options (or give the options as keywords), got {type(options).__name__}")
    given = (options.set_fields() if options is not None else set()) | set(option_values)
    return (options or Options()).replace(**option_values), given


def _featurizer_property(name: str) -> property:
    return property(lambda self: getattr(self.featurizer, name), doc=getattr(Featurizer, name).__doc__)


class PFV:
    """Principal Feature Visualisation of an ONNX model.

    Args:
        model: a bundled model's name, an ``.onnx`` path, bytes or a ``ModelProto`` (tapped by
            :func:`pfv_onnx.export` or not).
        options: an :class:`~pfv_onnx.Options`; keyword arguments (``n_components=5``, ``preset="lite"``,
            ...) set its fields. With ``basis``, a method option set here (as a keyword, or away from its
            default in ``options``) must agree with the basis.
        basis: a fitted basis (a ``.npz`` file from :meth:`save_basis` or ``pfv-onnx fit``) for
            :meth:`transform`; refused when fitted on another model or other layers.
        labels: class names for the model's output, a labels file or ``imagenet`` (default: see :mod:`pfv_onnx.images.labels`).

    Attributes:
        featurizer: the model side (:class:`~pfv_onnx.Featurizer`): session, taps, preprocessing.
        options: the options in force: the model's preset and input size filled in, the method fixed by
            the basis once there is one.
        basis: the fitted basis, or ``None``.
        fit_skipped: the images :meth:`fit` could not read, one record each.

    A fitted basis gives an image the same colours in every batch, and is saved and opened again:

    >>> import tempfile
    >>> import numpy as np
    >>> photos = bundled.sample_images()
    >>> pfv = PFV(n_components=4).fit(photos)
    >>> alone, together = pfv.transform(photos[3:4]), pfv.transform(photos[:4])
    >>> np.allclose(alone.rgb[0], together.rgb[3], atol=1e-4)
    True
    >>> PFV(basis=pfv.save_basis(f"{tempfile.mkdtemp()}/basis.npz"))
    PFV(...mobilenet_v2.onnx: input 224 x 224 NCHW, preset imagenet, ..., 4 components, weighting focus, a basis fitted on 8 images)
    """

    def __init__(
        self,
        model: ModelLike = bundled.DEFAULT_MODEL,
        options: Options | None = None,
        *,
        basis: str | Path | FittedBasis | None = None,
        labels: str | Path | Sequence[str] | None = None,
        **option_values: Any,
    ):
        options, given = options_given(options, option_values)
        if basis is not None:  # the basis fixes the method, and with it the taps the featurizer reads
            method = method_of(load_basis(basis)[0] if not isinstance(basis, FittedBasis) else basis)
            check_method(options, method, given)
            options = options.replace(**method)
        self.featurizer = Featurizer(model, options, labels)
        # A basis is bound to the preset and input size: they are part of the options in force.
        self.options = options.replace(preset=self.featurizer.preset.name, size=self.featurizer.size)
        self.basis: FittedBasis | None = None
        self.fit_skipped: list[dict] = []
        if basis is not None:
            self._use_basis(basis)

    # The model's taps, F_N and input size, as the featurizer reads them.
    taps = _featurizer_property("taps")
    final = _featurizer_property("final")
    size = _featurizer_property("size")

    def __repr__(self) -> str:
        model = self.featurizer.model_path or "a model given in memory"
        height, width = self.size
        method = f"{self.options.n_components} components, weighting {self.options.weighting}" + (", hierarchical" if self.options.hierarchical else "")
        basis = f"a basis fitted on {plural(self.basis.images, 'image')}" if self.basis is not None else "no basis (colours relative to each batch)"
        return (f"PFV({model}: input {height} x {width} {self.featurizer.input.layout}, preset {self.featurizer.preset.name}, "
                f"F_N {self.final}, {plural(len(self.taps), 'earlier tap')}, {method}, {basis})")

    # ---- the verbs --------------------------------------------------------------------------------------

    def __call__(self, images: Images) -> PFVResult:
        """PFV of one analysis batch, coloured relative to its own images (the paper's method).

        Args:
            images: paths or folders, PIL images, uint8 arrays, a preprocessed float batch in the
                model's layout, or a :class:`~pfv_onnx.runtime.features.Batch` from ``featurizer.load``.
        """
        return self._run(images, None)

    def fit(self, images: Images, batch_size: int = 32, dask: str | None = None, progress: Callable[[int, int], None] | None = None) -> PFV:
        """Fit the basis on every image of ``images`` (as :meth:`__call__` takes them), streamed in constant
        memory. ``dask``: ``"local"`` or a scheduler address to fit on Dask (files and folders only).
        Images that cannot be read are skipped (listed in ``fit_skipped``). ``progress`` (in this process) is
        called with the images each finished batch held and the number the two passes read in all; by
        default a progress bar shows them, in a notebook or a terminal. Returns ``self``."""
        items = self.featurizer.items(images)
        with progress_bar(unit="image reads") as bar:
            basis, self.fit_skipped = fit_basis(self.featurizer, items, self.options, batch_size, dask, progress or bar)
        self._use_basis(basis)
        return self

    def transform(self, images: Images) -> PFVResult:
        """PFV of ``images`` coloured with the fitted basis: an image gets the same colours in any batch."""
        if self.basis is None:
            raise PFVError("no fitted basis: call fit() first, or give basis=")
        return self._run(images, self.basis)

    def fit_transform(self, images: Images) -> PFVResult:
        """Fit the basis on ``images`` and colour them with it, from one forward pass."""
        batch, features, timings = self._forward(images, maps=True)
        self.fit_skipped = []
        self._use_basis(basis_of(features, self.size, self.options, len(batch.names), self.featurizer.blank_for(self.options.weighting)))
        return self._colour(features, batch.crops, batch.names, timings, self.basis)

    def atlas(self, data: str | Path | Sequence[str | Path], top: int = 8, batch_size: int = 32, dask: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> AtlasResult:
        """What each component responds to over ``data`` (files, folders or a folder-per-class root): an
        :class:`AtlasResult`. Fits the basis on ``data`` first when there is none. ``progress`` is called
        with the images each finished batch held and the number of image reads in all (the fit, when there
        is one, reads the data twice); by default a progress bar shows them, in a notebook or a terminal."""
        with progress_bar(unit="image reads") as bar:
            found = atlas(self, data, top=top, batch_size=batch_size, dask=dask, progress=progress or bar)
        return promote(AtlasResult, found)

    def debug(self, image: str | Path, true_class: Sequence[str | Path], predicted_class: Sequence[str | Path], seed: int = 0) -> DebugResult:
        """Why ``image`` was misclassified: its components against three examples each of its true and its
        predicted class (files or folders), in one batch (:mod:`pfv_onnx.analyses.debug`). ``pfv-onnx debug``
        weights by ``A^b`` (``weighting="paper"``) unless told otherwise; this uses this PFV's options."""
        return promote(DebugResult, debug(self, image, true_class, predicted_class, seed=seed))

    def survey(self, dataset: str | Path, per_class: int = 1, seed: int = 0, probe: bool = False) -> SurveyResult:
        """Which classes of the folder-per-class ``dataset`` this model's features separate, from a seeded
        sample of ``per_class`` images a class; ``probe``: check it with a linear probe (:mod:`pfv_onnx.analyses.survey`)."""
        return promote(SurveyResult, survey(self, Path(dataset), per_class=per_class, seed=seed, probe=probe))

    def sanity(self, images: Sequence[str | Path], steps: int = STEPS, seed: int = 0) -> SanityResult:
        """The randomisation test on ``images``: does PFV change as the model's weights are re-initialised,
        top layer first (:mod:`pfv_onnx.analyses.sanity`)? Needs a model opened from a file."""
        return promote(SanityResult, sanity(self, images, steps=steps, seed=seed))

    # ---- for the commands, which run the forward pass themselves (explain's stream, survey) ---------------

    def _colour(
        self,
        features: Features,
        images: Any = None,
        names: Sequence[str] | None = None,
        timings: dict[str, float] | None = None,
        basis: FittedBasis | None = None,
        threads: int | None = None,
    ) -> PFVResult:
        """The result of one forward pass's features, relative to the batch or with ``basis`` (a stream
        runs this in a worker thread while the next batch goes forward).

        Args:
            images: the ``(B, H0, W0, 3)`` uint8 crops the features came from, or ``None``.
            names: one name per image (default ``image_<i>``).
            timings: the caller's stages so far, kept in the result.
            threads: threads for the NumPy core (default: the cores this process may use).
        """
        weighting = basis.weighting if basis is not None else self.options.weighting
        vis = colour(features, self.size, self.options, basis, threads, self.featurizer.blank_for(weighting))
        count = vis.rgb.shape[0]
        return PFVResult(
            visualisation=vis,
            taps=self.taps,
            final=self.final,
            logits=features.logits,
            images=images,
            names=list(names) if names is not None else [f"image_{i}" for i in range(count)],
            labels=self.featurizer.class_names(features.logits),
            features=features,
            timings={**(timings or {}), **vis.timings},
            description=self.describe(),
        )

    def _forward(self, images: Images, maps: bool, relative: bool = False):
        started = time.perf_counter()
        batch = self.featurizer.load(images)
        loaded = time.perf_counter()
        features = self.featurizer.forward(batch.inputs, maps=maps, relative=relative)
        return batch, features, {"preprocess": loaded - started, "forward": time.perf_counter() - loaded}

    def _run(self, images: Images, basis: FittedBasis | None) -> PFVResult:
        batch, features, timings = self._forward(images, self._needs_maps(basis), relative=basis is None)
        return self._colour(features, batch.crops, batch.names, timings, basis)

    def _needs_maps(self, basis: FittedBasis | None = None) -> bool:
        """Whether colouring (relative, or with ``basis``) needs the per-layer maps from the forward pass."""
        return basis.hierarchical if basis is not None else self.options.hierarchical

    # ---- the basis --------------------------------------------------------------------------------------

    def _use_basis(self, basis: str | Path | FittedBasis) -> None:
        """Colour :meth:`transform` calls with ``basis`` from now on (a file is checked against this model,
        its layers and its inputs). The basis fixes the method's options."""
        loaded, header = (basis, None) if isinstance(basis, FittedBasis) else load_basis(basis)
        check_fits(loaded, header, self.featurizer, inputs_of(self.options, self.size), str(basis))
        # What the colours mean depends on these: they come from the basis.
        self.options = self.options.replace(**method_of(loaded))
        self.basis = loaded

    def save_basis(self, path: str | Path) -> Path:
        """Write the fitted basis to ``path`` (``.npz``); :class:`PFV` reads it back with ``basis=``."""
        if self.basis is None:
            raise PFVError("no fitted basis to save: call fit() first")
        return save_basis(path, self.basis, self._basis_header(self.basis))

    def _basis_header(self, basis: FittedBasis) -> dict[str, Any]:
        """What a basis file records of the model, its layers and the options that shaped the basis."""
        return header_of(self.featurizer, self.options, basis)

    # ---- views of the options -------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The model (path, SHA-256, input, preset, providers), its taps and the options, as JSON data."""
        return {
            "pfv_onnx": __version__,
            **self.featurizer.describe(),
            "options": {**self.options.view("method"), "resize": self.options.resize, "chunk_size": self.featurizer.chunk_size},
            "basis": None if self.basis is None else {"images": self.basis.images, "fingerprint": self.basis.fingerprint()},
        }

    def _config(self) -> dict[str, Any]:
        """Keyword arguments that open this same PFV elsewhere (another process, a Dask worker)."""
        if self.featurizer.model_path is None:
            raise PFVError("this PFV was opened from bytes or a ModelProto; give a model file to run it elsewhere")
        return {"model": str(Path(self.featurizer.model_path).resolve()), **self.options.view()}


def evaluate(model: ModelLike = bundled.DEFAULT_MODEL, scenes: evaluation.Scenes | None = None, options: Options | None = None, *,
             batch: int = evaluation.BATCH, steps: int = evaluation.STEPS, fill: str = "blur", faithfulness: bool = True, seed: int = 0,
             count: int = evaluation.COMPOSITES, examples: int = 6, progress: Callable[[int, int], None] | None = None,
             dask: str | None = None) -> EvaluationResult:
    """Do PFV's maps point at the object, and are they faithful to the model? The scores of
    :func:`pfv_onnx.analyses.evaluate.evaluate` (the arguments are its), as a result that shows itself and
    saves what ``pfv-onnx evaluate`` writes (``.save(folder)``); without ``progress``, a progress bar in a notebook or a terminal.

    >>> result = evaluate(count=8, faithfulness=False, progress=lambda done, total: None)   # the bundled MobileNetV2
    >>> print(repr(result).splitlines()[0])
    Evaluation of 8 images with mobilenet_v2.onnx, weighting focus: trustworthy (random control's ROC-AUC ...)
    >>> result.summary["maps"]["PFV (focus)"]["auc"] > 0.9    # PFV's picture finds the pasted objects
    True
    """
    with progress_bar() as bar:
        found = evaluation.evaluate(model, scenes, options, batch=batch, steps=steps, fill=fill, faithfulness=faithfulness, seed=seed,
                                    count=count, examples=examples, progress=progress or from_totals(bar), dask=dask)
    return promote(EvaluationResult, found)
