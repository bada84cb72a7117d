"""The PFV pipeline: one tapped model, one onnxruntime session, the NumPy core.

>>> pfv = PFV()                                  # the bundled MobileNetV2
>>> result = pfv(["cat.jpg", "dog.jpg"])        # one batch: colours contrast these images
>>> result.rgb.shape                             # (2, 224, 224, 3) float32 in [0, 1]
"""

from __future__ import annotations

import functools
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

from . import __version__, bundled
from .basis_file import check_basis, load_basis, save_basis
from .core import FittedBasis, Visualisation, transform, visualise
from .core.decomposition import SOLVERS
from .errors import ImageError, PFVError
from .graph import InputSpec, LinearHead, image_input, linear_head, load_model, model_sha256, weights_folder
from .preprocess import RESIZE_MODES, Preset, expand_inputs, fit_image, get_preset, to_image, to_model_input
from .report import build_summary, write_batch, write_summary
from .runtime import Session, default_chunk, resolve_providers, single_threaded
from .tapping import TappedModel, tap_model

ImageLike = str | Path | Image.Image | np.ndarray
PRESET_METADATA_KEY = "preset"


@dataclass
class Features:
    """What one forward pass of the tapped model gives for a batch of ``B`` images.

    Attributes:
        final: ``(B, C, h, w)`` float32, ``F_N``.
        maps: one ``(B, h_l, w_l)`` float32 channel-sum map per earlier tap, in graph order; ``None`` when
            the graph computed ``A^b`` and they were not fetched (they stayed in onnxruntime).
        activation: ``(B, H0, W0)`` float32 ``A^b`` when the graph computed it, else ``None``.
        logits: ``(B, K)`` float32 model output when kept, else ``None``.
    """

    final: np.ndarray
    maps: list[np.ndarray] | None
    activation: np.ndarray | None = None
    logits: np.ndarray | None = None


@dataclass
class PFVResult:
    """PFV of one analysis batch of ``B`` images at the model's input size ``H0 x W0``.

    Attributes:
        visualisation: the core's arrays (:class:`pfv_onnx.core.Visualisation`); the properties below read it.
        taps: tensor names feeding ``A^b``, in graph order.
        final: tensor name of ``F_N``.
        logits: ``(B, K)`` float32 model output, ``None`` when the head was not kept.
        images: ``(B, H0, W0, 3)`` uint8 RGB model-input crops, ``None`` for a preprocessed float batch.
        names: one name per image (file stem, or ``image_<i>``).
        labels: class names for ``logits``, when known.
        features: the forward pass's outputs (``F_N``, the per-layer maps), for baselines and probes.
        timings: seconds per stage: ``preprocess``, ``forward``, ``decomposition``, ``weighting``.
        description: the model and options that made it (:meth:`PFV.describe`).
    """

    visualisation: Visualisation
    taps: list[str]
    final: str
    logits: np.ndarray | None = None
    images: np.ndarray | None = None
    names: list[str] = field(default_factory=list)
    labels: list[str] | None = None
    features: Features | None = None
    timings: dict[str, float] = field(default_factory=dict)
    description: dict = field(default_factory=dict)

    @property
    def rgb(self) -> np.ndarray:
        """``(B, H0, W0, 3)`` float32 in ``[0, 1]``: component 1, 2, 3 in red, green, blue."""
        return self.visualisation.rgb

    @property
    def activation(self) -> np.ndarray:
        """``(B, H0, W0)`` float32, the total activation map ``A^b``."""
        return self.visualisation.activation

    @property
    def components(self) -> np.ndarray:
        """``(B, H0, W0, k)`` float32, the principal components upsampled, not weighted (computed on first use)."""
        return self.visualisation.components

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        """``(k,)`` float64 share of ``F_N``'s variance explained by each component."""
        return self.visualisation.pca.explained_variance_ratio

    def save(self, out: str | Path) -> dict:
        """Write the pictures of this batch, its mosaic, ``summary.json`` and ``index.html`` to the folder
        ``out`` (layout in :mod:`pfv_onnx.report`); return the summary."""
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise PFVError(f"{out}: exists and is not a folder")
        written = write_batch(out, self, 0)
        summary = build_summary(self.description, [written.batch], written.images, {**self.timings, **written.wait()})
        write_summary(out, summary)
        return summary

    def top_k(self, k: int = 5) -> list[list[tuple[int, str | None, float]]]:
        """Per image, the ``k`` most probable classes as ``(index, name, probability)``."""
        if self.logits is None:
            raise PFVError("the model's output was not kept, so there are no predictions")
        probs = _probabilities(self.logits)
        best = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        return [
            [(int(c), self.labels[c] if self.labels and c < len(self.labels) else None, float(p[c])) for c in row]
            for row, p in zip(best, probs)
        ]


def _probabilities(logits: np.ndarray) -> np.ndarray:
    """Softmax of each row, unless the rows are probabilities already (a softmax inside the model)."""
    x = logits.astype(np.float64)
    if np.all(x >= 0) and np.allclose(x.sum(axis=1), 1.0, atol=1e-3):
        return x
    x = np.exp(x - x.max(axis=1, keepdims=True))
    return x / x.sum(axis=1, keepdims=True)


class PFV:
    """Principal Feature Visualisation of an ONNX model.

    Args:
        model: a bundled model's name, an ``.onnx`` path, bytes or a ``ModelProto`` (tapped by
            :func:`pfv_onnx.export` or not).
        layers, final: tensor names to tap instead of the automatic rule.
        providers: onnxruntime execution providers; default CUDA when available, else CPU.
        preset: pixel normalisation (:data:`pfv_onnx.preprocess.PRESETS`); default the model's metadata
            ``preset`` entry, else ``imagenet``.
        n_components, hierarchical, n_sigma, solver: the method's options (:func:`pfv_onnx.core.visualise`).
        keep_logits: keep the model's own output for predictions.
        chunk_size: images per inference call for a dynamic batch (a fixed batch runs in its own size);
            ``"auto"``: 8 on the CPU (cache-sized chunks are faster there), 32 on an accelerator; ``None``:
            the whole batch in one call. The decomposition spans every image of the call whatever the
            chunks.
        resize: ``crop`` (ImageNet evaluation crop) or ``stretch`` (whole photo).
        activation_in_graph: compute ``A^b`` at full size inside the graph; default on for CUDA, off on
            the CPU, where upsampling the small per-layer maps in OpenCV costs less.
        threads: onnxruntime intra-op threads.
        labels: class names for the model's output; default the bundled ImageNet names for 1000 classes.
        size: ``(H, W)`` to feed a model that leaves its input size open (default 224 x 224); a model
            with a fixed size must be given that size or none.
        basis: a fitted basis (a ``.npz`` file from :meth:`save_basis` or ``pfv-onnx fit``) to colour every
            batch the same way; refused when fitted on another model or other layers.

    Calling a ``PFV`` colours the batch relative to itself (the paper's method, :meth:`fit_transform`)
    unless it has a fitted basis (:meth:`fit`, or ``basis=``): then the colours come from the basis
    (:meth:`transform`) and an image gets the same colours in any batch.
    """

    def __init__(
        self,
        model: str | Path | bytes | onnx.ModelProto = bundled.DEFAULT_MODEL,
        layers: Sequence[str] | None = None,
        final: str | None = None,
        providers: Sequence[str] | None = None,
        preset: str | None = None,
        n_components: int = 3,
        hierarchical: bool = False,
        n_sigma: float = 1.0,
        solver: str = "auto",
        keep_logits: bool = True,
        chunk_size: int | str | None = "auto",
        resize: str = "crop",
        activation_in_graph: bool | None = None,
        threads: int | None = None,
        labels: Sequence[str] | None = None,
        size: tuple[int, int] | None = None,
        basis: str | Path | FittedBasis | None = None,
    ):
        if not isinstance(n_components, int) or n_components < 1:
            raise PFVError(f"n_components must be a positive integer, got {n_components!r}")
        if not n_sigma > 0:
            raise PFVError(f"n_sigma must be positive, got {n_sigma}")
        if solver not in SOLVERS:
            raise PFVError(f"unknown solver {solver!r} (choose from {', '.join(SOLVERS)})")
        if resize not in RESIZE_MODES:
            raise PFVError(f"unknown resize mode {resize!r} (choose from {', '.join(RESIZE_MODES)})")
        positive = isinstance(chunk_size, numbers.Integral) and not isinstance(chunk_size, bool) and chunk_size >= 1
        if not (chunk_size is None or chunk_size == "auto" or positive):
            raise PFVError(f"chunk_size must be a positive integer, 'auto' or None, got {chunk_size!r}")
        resolved = bundled.resolve_model(model) if isinstance(model, (str, Path)) else model
        self.model_path = str(resolved) if isinstance(resolved, (str, Path)) else None
        source = load_model(resolved)
        self._source_bytes = None if self.model_path is not None else (resolved if isinstance(resolved, bytes) else source.SerializeToString())
        self.providers = resolve_providers(providers)
        if activation_in_graph is None:
            activation_in_graph = self.providers[0] != "CPUExecutionProvider"
        spec = image_input(source)
        self.tapped: TappedModel = tap_model(
            source, list(layers) if layers else None, final, keep_logits, activation_in_graph, size=size or spec.size_or_default,
            weights_dir=weights_folder(resolved, source),
        )
        # No spinning: the NumPy core runs right after each forward pass and needs the cores.
        self.session = Session(self.tapped.model, self.providers, threads, spin=False, weights_dir=self.tapped.weights_dir)
        self.preset: Preset = model_preset(source, preset)
        self.n_components = n_components
        self.hierarchical = hierarchical
        self.n_sigma = n_sigma
        self.solver = solver
        self.chunk_size = default_chunk(self.providers) if chunk_size == "auto" else (None if chunk_size is None else int(chunk_size))
        self.resize = resize
        self._labels = list(labels) if labels is not None else None
        self._options = {"layers": list(layers) if layers else None, "final": final, "preset": self.preset.name,
                         "n_components": n_components, "hierarchical": hierarchical, "n_sigma": n_sigma,
                         "solver": solver, "resize": resize, "size": list(self.size)}
        self.basis: FittedBasis | None = None
        self.basis_header: dict | None = None
        if basis is not None:
            self.use_basis(basis)

    @property
    def input(self) -> InputSpec:
        return self.tapped.input

    @property
    def taps(self) -> list[str]:
        return list(self.tapped.outputs.taps)

    @property
    def final(self) -> str:
        return self.tapped.outputs.final

    @property
    def size(self) -> tuple[int, int]:
        """``(H0, W0)``, the image size fed to the model."""
        return self.input.size_or_default

    def prepare(self, item: ImageLike) -> np.ndarray:
        """One image (a path, a PIL image or a uint8 array) decoded and resized: ``(H0, W0, 3)`` uint8 RGB.

        Raises:
            ImageError: the image cannot be read (one line, naming the file).
        """
        return fit_image(to_image(item), self.size, self.resize)

    def preprocess(self, images: ImageLike | Sequence[ImageLike]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Decode and resize images for the model; folders are expanded to their images.

        Returns:
            The model input batch (float, the model's layout), the ``(B, H0, W0, 3)`` uint8 RGB crops, and
            one name per image.
        """
        items: list[ImageLike]
        if isinstance(images, (str, Path, Image.Image)) or (isinstance(images, np.ndarray) and images.ndim <= 3):
            items = [images]
        else:
            items = list(images)
        expanded: list[ImageLike] = []
        for item in items:
            expanded += expand_inputs([item]) if isinstance(item, (str, Path)) else [item]
        if not expanded:
            raise ImageError("no images given")
        pixels = np.stack([self.prepare(item) for item in expanded])
        names = [Path(item).stem if isinstance(item, (str, Path)) else f"image_{i}" for i, item in enumerate(expanded)]
        return self.model_input(pixels), pixels, names

    def model_input(self, pixels: np.ndarray) -> np.ndarray:
        """``(B, H0, W0, 3)`` uint8 RGB crops as the model's float input, normalised by the preset."""
        spec = self.input
        return to_model_input(pixels, self.preset, spec.layout, spec.channels, spec.dtype)

    def forward(self, batch: np.ndarray, maps: bool | None = None) -> Features:
        """One forward pass (in chunks) of a preprocessed batch in the model's layout.

        Args:
            maps: fetch the per-layer maps ``A_l`` when the graph computes ``A^b`` (without ``A^b`` in the
                graph they are always fetched: ``A^b`` is made from them). Default: for the hierarchical
                weighting only; otherwise only ``F_N``, ``A^b`` and the logits leave onnxruntime.
        """
        spec = self.input
        expected = (spec.channels, *self.size) if spec.layout == "NCHW" else (*self.size, spec.channels)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != expected:
            raise PFVError(f"expected a batch of shape (B, {', '.join(map(str, expected))}), got {batch.shape}")
        if batch.shape[0] < 1:
            raise PFVError("no images to run")
        outputs = self.tapped.outputs
        logits = self._logits_output
        fetch_maps = outputs.activation is None or (self.hierarchical if maps is None else maps)
        layer_maps = list(outputs.maps) if fetch_maps else []
        names = [outputs.final, *layer_maps, *([outputs.activation] if outputs.activation else []), *([logits] if logits else [])]
        values = self.session.run(np.ascontiguousarray(batch, dtype=spec.dtype), names, self.chunk_size)
        as32 = lambda name: np.asarray(values[name], dtype=np.float32)  # noqa: E731  (fp16 models)
        return Features(
            final=as32(outputs.final),
            maps=[as32(name)[:, 0] for name in layer_maps] if fetch_maps else None,
            activation=as32(outputs.activation)[:, 0] if outputs.activation else None,
            logits=as32(logits).reshape(batch.shape[0], -1) if logits else None,
        )

    @functools.cached_property
    def _logits_output(self) -> str | None:
        """The first kept model output shaped like class scores: ``(B, K)`` or ``(B, K, 1, 1)``."""
        for name in self.tapped.outputs.original:
            shape = self.session.output_shape(name)
            if name == self.final or shape is None or not shape:
                continue
            batched = not isinstance(shape[0], int) or shape[0] == self.session.fixed_batch
            if batched and (len(shape) == 2 or (len(shape) == 4 and shape[2:] == [1, 1])):
                return name
        return None

    def visualise(self, features: Features, basis: FittedBasis | None = None) -> Visualisation:
        """The NumPy part of PFV on the features of one analysis batch, relative to the batch or with
        ``basis``."""
        hierarchical = basis.hierarchical if basis is not None else self.hierarchical
        if features.maps is None and hierarchical:
            raise PFVError("the hierarchical weighting needs the per-layer maps: forward(batch, maps=True)")
        maps = features.maps if features.maps is not None else []
        with single_threaded():
            if basis is not None:
                return transform(features.final, maps, self.size, basis, activation=features.activation)
            return visualise(
                features.final, maps, self.size, n_components=self.n_components, hierarchical=self.hierarchical,
                n_sigma=self.n_sigma, solver=self.solver, activation=features.activation,
            )

    def __call__(self, images: ImageLike | Sequence[ImageLike] | np.ndarray, fitted: bool | None = None) -> PFVResult:
        """PFV of one analysis batch: image paths or folders, PIL images, uint8 arrays, or a preprocessed
        float batch in the model's layout. Coloured with the fitted basis when there is one (``fitted``
        overrides), else relative to the images of this call."""
        if isinstance(images, np.ndarray) and images.dtype.kind == "f":
            return self.run(images, None, [f"image_{i}" for i in range(images.shape[0])], fitted=fitted)
        started = time.perf_counter()
        batch, pixels, names = self.preprocess(images)
        return self.run(batch, pixels, names, time.perf_counter() - started, fitted=fitted)

    def run(
        self, batch: np.ndarray, pixels: np.ndarray | None, names: list[str], preprocess_s: float = 0.0, fitted: bool | None = None
    ) -> PFVResult:
        """PFV of a preprocessed batch: the forward pass and the NumPy core.

        Args:
            batch: the model input (:meth:`model_input`).
            pixels: the ``(B, H0, W0, 3)`` uint8 crops it came from, for pictures, or ``None``.
            names: one name per image.
            preprocess_s: seconds the caller spent preparing it (reported in ``timings``).
            fitted: colour with the fitted basis (default: when there is one) or relative to the batch.
        """
        started = time.perf_counter()
        features = self.forward(batch)
        timings = {"preprocess": preprocess_s, "forward": time.perf_counter() - started}
        return self.result(features, pixels, names, timings, fitted)

    def result(
        self, features: Features, pixels: np.ndarray | None, names: list[str], timings: dict[str, float] | None = None,
        fitted: bool | None = None,
    ) -> PFVResult:
        """The NumPy part of :meth:`run` on the features of one forward pass (another thread may run it while
        the next batch goes forward). ``timings`` are the caller's stages so far, kept in the result."""
        fitted = self.basis is not None if fitted is None else fitted
        if fitted and self.basis is None:
            raise PFVError("no fitted basis: call fit() first, or give basis=")
        pixels_per_batch = features.final.shape[0] * features.final.shape[2] * features.final.shape[3]
        if not fitted and pixels_per_batch < self.n_components:
            raise PFVError(
                f"the final layer gives {pixels_per_batch} pixel(s) for this batch "
                f"({features.final.shape[2]} x {features.final.shape[3]} per image), fewer than the "
                f"{self.n_components} components asked for: use more images or fewer components"
            )
        try:
            vis = self.visualise(features, self.basis if fitted else None)
        except ValueError as exc:
            raise PFVError(f"cannot visualise this batch: {exc}") from None
        return PFVResult(
            visualisation=vis,
            taps=self.taps,
            final=self.final,
            logits=features.logits,
            images=pixels,
            names=list(names),
            labels=self._class_names(features.logits),
            features=features,
            timings={**(timings or {}), **vis.timings},
            description=self.describe(),
        )

    def describe(self) -> dict:
        """The model (path, SHA-256, input, preset, providers), its taps and the method's options, as JSON data."""
        spec = self.input
        return {
            "pfv_onnx": __version__,
            "model": {
                "path": self.model_path,
                "sha256": self.model_sha256,
                "input": {"name": spec.name, "layout": spec.layout, "size": list(self.size), "batch": spec.batch},
                "preset": self.preset.name,
                "providers": self.session.providers,
            },
            "taps": self.taps,
            "final": self.final,
            "options": {
                "n_components": self.n_components,
                "hierarchical": self.hierarchical,
                "n_sigma": self.n_sigma,
                "solver": self.solver,
                "resize": self.resize,
                "chunk_size": self.chunk_size,
            },
            "basis": None if self.basis is None else {"images": self.basis.images, "fingerprint": self.basis.fingerprint()},
        }

    # ---- a fitted basis: colours that mean the same in every batch ----------------------------------

    def fit(self, inputs: Sequence[str | Path], batch_size: int = 32, dask: str | None = None) -> PFV:
        """Fit the basis on every image of ``inputs`` (files and folders), in constant memory; afterwards
        calls colour every batch with it. ``dask``: ``"local"`` or a scheduler address to fit on Dask.
        Inputs that cannot be read are skipped (listed in ``fit_skipped``). Returns ``self``."""
        from .fitting import fit

        self.basis, self.fit_skipped = fit(self, inputs, batch_size, dask)
        self.basis_header = self._basis_header()
        return self

    def transform(self, images: ImageLike | Sequence[ImageLike] | np.ndarray) -> PFVResult:
        """PFV of ``images`` coloured with the fitted basis."""
        return self(images, fitted=True)

    def fit_transform(self, images: ImageLike | Sequence[ImageLike] | np.ndarray) -> PFVResult:
        """PFV of ``images`` coloured relative to themselves (the paper's method, whether or not a basis is
        fitted); equal to fitting on ``images`` alone and transforming them, up to the PCA solver."""
        return self(images, fitted=False)

    def save_basis(self, path: str | Path) -> Path:
        """Write the fitted basis to ``path`` (``.npz``); :class:`PFV` reads it back with ``basis=``."""
        if self.basis is None:
            raise PFVError("no fitted basis to save: call fit() first")
        return save_basis(path, self.basis, self.basis_header or self._basis_header())

    def use_basis(self, basis: str | Path | FittedBasis) -> None:
        """Colour with ``basis`` from now on (a file is checked against this model and its layers)."""
        if isinstance(basis, FittedBasis):
            self.basis, self.basis_header = basis, self._basis_header()
            return
        loaded, header = load_basis(basis)
        inputs = {"preset": self.preset.name, "size": list(self.size), "resize": self.resize}
        check_basis(header, loaded, self.model_sha256, self.taps, self.final, inputs, str(basis))
        self.basis, self.basis_header = loaded, header
        # The basis fixes the method's options: what the colours mean depends on them.
        self.n_components = loaded.pca.n_components
        self.hierarchical = loaded.hierarchical
        self.n_sigma = loaded.n_sigma

    def _basis_header(self) -> dict:
        return {"model_sha256": self.model_sha256, "model_path": self.model_path, "taps": self.taps,
                "final": self.final, "channels": int(self.basis.pca.mean.shape[0]) if self.basis else None,
                "n_components": self.n_components, "preset": self.preset.name, "size": list(self.size),
                "resize": self.resize}

    def config(self) -> dict:
        """Keyword arguments that open this same PFV elsewhere (another process, a Dask worker)."""
        if self.model_path is None:
            raise PFVError("this PFV was opened from bytes or a ModelProto; give a model file to run it elsewhere")
        return {"model": str(Path(self.model_path).resolve()), "keep_logits": False, "providers": self.providers, **self._options}

    @functools.cached_property
    def model_sha256(self) -> str | None:
        """SHA-256 of the model file this PFV was opened from (for a model exported by pfv-onnx, of the
        model it was exported from), or of the serialised model given in memory."""
        if self.tapped.outputs.source_sha256:
            return self.tapped.outputs.source_sha256
        return self._model_digest

    @functools.cached_property
    def _model_digest(self) -> str | None:
        return model_sha256(self.model_path if self.model_path is not None else self._source_bytes)

    @functools.cached_property
    def head(self) -> LinearHead | None:
        """The classifier head when it is global average pooling and one linear layer (for CAM), else ``None``."""
        shape = next((o for o in self.tapped.model.graph.output if o.name == self.final), None)
        dims = [d.dim_value for d in shape.type.tensor_type.shape.dim] if shape is not None else []
        return linear_head(self.tapped.model, self.final, tuple(dims[2:4]) if len(dims) == 4 else None)

    def _class_names(self, logits: np.ndarray | None) -> list[str] | None:
        if self._labels is not None:
            return self._labels
        if logits is not None and logits.shape[1] == 1000:
            return bundled.imagenet_labels()
        return None


def model_preset(model: onnx.ModelProto, name: str | None = None) -> Preset:
    """The preset ``name``, else the one the model's metadata names (``preset``), else ``imagenet``."""
    return get_preset(name or _metadata(model, PRESET_METADATA_KEY) or "imagenet")


def _metadata(model: onnx.ModelProto, key: str) -> str | None:
    return next((p.value for p in model.metadata_props if p.key == key), None)
