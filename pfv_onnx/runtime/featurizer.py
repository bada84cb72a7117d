"""The model side of PFV: a model tapped, in an onnxruntime session chosen by its use
(:class:`~pfv_onnx.runtime.session.SessionByUse`), with the preprocessing its preset names; images in,
:class:`~pfv_onnx.runtime.features.Features` out.

>>> featurizer = Featurizer("mobilenet_v2")
>>> batch = featurizer.load(["cat.jpg", "dog.jpg"])     # paths, folders, PIL images, uint8 arrays
>>> features = featurizer.forward(batch.inputs)         # F_N, A^b or the per-layer maps, logits
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
import onnx
from PIL import Image

from ..images import bundled
from ..util import memory
from ..util.console import plural
from ..errors import ImageError, ModelError, PFVError, PresetWarning, warn_caller
from ..core.activation import EARLIER_TAPS, BlankResponse, channel_sum
from ..core.fitted import FeatureMoments
from ..core.visualise import feature_matrix
from .features import Batch, Features, FinalStatistics
from ..graph import (
    InputSpec,
    LinearHead,
    bytes_sha256,
    features_sha256,
    file_sha256,
    image_input,
    linear_head,
    load_model,
    weights_folder,
)
from ..images.labels import METADATA_KEY as LABELS_METADATA_KEY
from ..images.labels import resolve_labels
from ..options import Options
from ..images.preprocess import blank_image, expand_inputs, fit_image, to_image, to_model_input
from ..presets import DEFAULT_PRESET, Preset, get_preset
from . import Session, default_chunk, probe_tensors, resolve_providers
from .session import SessionByUse
from .tapping import TappedModel, tap_model

ImageLike = Union[str, Path, Image.Image, np.ndarray]
ModelLike = Union[str, Path, bytes, onnx.ModelProto]
PRESET_METADATA_KEY = "preset"
# Bytes each pixel of a picture takes, beside the model's input, while it is coloured and drawn: its crop
# (3), PFV in float32 (12), A^b (4) and the weighting's scratch (12).
PICTURE_BYTES_PER_PIXEL = 31
GPU_PROVIDERS = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


# What a model that names no preset needs, in Python (the command line names the flags).
PRESET_ADVICE = "give preset=, or write it into the model with export(..., preset=)"


class Featurizer:
    """A model made ready for PFV.

    Args:
        model: a bundled model's name, an ``.onnx`` path, bytes or a ``ModelProto`` (tapped by
            :func:`pfv_onnx.export` or not).
        options: the ``model``, ``images``, ``runtime`` and ``export`` fields of :class:`~pfv_onnx.Options`
            are read here, and the weighting (which taps it reads).
        labels: class names for the model's output (see :mod:`pfv_onnx.images.labels` for the default).
    """

    def __init__(self, model: ModelLike = bundled.DEFAULT_MODEL, options: Options | None = None, labels: str | Path | Sequence[str] | None = None):
        options = options or Options()
        resolved = bundled.resolve_model(model) if isinstance(model, (str, Path)) else model
        self.model_path = str(resolved) if isinstance(resolved, (str, Path)) else None
        source = load_model(resolved)
        # A model given in memory is identified by its bytes, as they are now (the caller may change it later).
        self._memory_sha256 = None
        if self.model_path is None:
            self._memory_sha256 = bytes_sha256(bytes(resolved) if isinstance(resolved, (bytes, bytearray)) else source.SerializeToString())
        self.providers = resolve_providers(options.providers)
        in_graph = options.activation_in_graph
        if in_graph is None:  # the paper's A^b only; on the CPU, upsampling the small per-layer maps in OpenCV costs less
            in_graph = self.providers[0] != "CPUExecutionProvider" and options.weighting == "paper"
        spec = image_input(source)
        size = options.size or spec.size_or_default
        # Only the earlier taps the weighting reads are summed in the graph (the hierarchical weighting reads all).
        self.weighting = options.weighting  # the paper's when hierarchical (Options sees to it)
        earlier = None if options.hierarchical else EARLIER_TAPS[options.weighting]
        statistics = options.statistics_in_graph
        if statistics is None:  # only the PCA's small matrices and the components leave a GPU
            statistics = self.providers[0] in GPU_PROVIDERS
        self.tapped: TappedModel = tap_model(
            source, list(options.layers) if options.layers else None, options.final, options.keep_logits, in_graph,
            size=size, weights_dir=weights_folder(resolved, source), earlier=earlier, statistics=statistics, grid=options.grid, checked=True,
        )
        # F_N stays in onnxruntime when the graph computes what the decomposition needs of it.
        self.statistics = statistics and self.tapped.outputs.statistics is not None
        self._sessions = SessionByUse(self.tapped.model, self.providers, options.threads, self.tapped.weights_dir)
        preset = options.preset or _metadata(source, PRESET_METADATA_KEY)
        self.preset_source = "--preset" if options.preset else "model metadata" if preset else "default"
        if preset is None:
            warn_caller(
                f"{self.model_path or 'the model'} does not name its pixel normalisation: using {DEFAULT_PRESET} "
                f"({PRESET_ADVICE})", PresetWarning, flags={PRESET_ADVICE: "give --preset, or write it into the model with pfv-onnx export --preset"},
            )
        self.preset: Preset = get_preset(preset or DEFAULT_PRESET)
        self.resize = options.resize
        self.chunk_size: int | None = default_chunk(self.providers) if options.chunk_size == "auto" else options.chunk_size
        self.labels, self.labels_source = resolve_labels(labels, options.labels, _metadata(source, LABELS_METADATA_KEY))
        scores = self.session.output_shape(self.logits_output) if self.labels is not None and self.logits_output else None
        if scores and isinstance(scores[1], int):  # names of another count are refused before any image is read
            self.class_names_for(scores[1])

    # ---- the model ----------------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        return self._sessions.current

    @property
    def input(self) -> InputSpec:
        return self.tapped.input

    @property
    def size(self) -> tuple[int, int]:
        """``(H0, W0)``, the image size fed to the model."""
        return self.input.size_or_default

    @property
    def taps(self) -> list[str]:
        """The earlier taps the weighting reads (all that the tap rule finds for the paper's), in graph order."""
        return list(self.tapped.outputs.taps)

    @property
    def final(self) -> str:
        """Tensor name of ``F_N``."""
        return self.tapped.outputs.final

    @functools.cached_property
    def model_sha256(self) -> str:
        """SHA-256 of what is run: the model file and its external weight files, or the serialised model
        given in memory."""
        if self.model_path is None:
            return self._memory_sha256
        return file_sha256(self.model_path, self.tapped.model, self.tapped.weights_dir)

    @functools.cached_property
    def features_sha256(self) -> str:
        """SHA-256 of the part of the model that computes the taps and ``F_N``, weights included
        (:mod:`pfv_onnx.graph.identity`): what a fitted basis is bound to."""
        return features_sha256(self.tapped.model, self.tapped.weights_dir, [*self.taps, self.final])

    @functools.cached_property
    def head(self) -> LinearHead | None:
        """The classifier head when it is global average pooling and one linear layer (for CAM), else ``None``."""
        shape = next((o for o in self.tapped.model.graph.output if o.name == self.final), None)
        dims = [d.dim_value for d in shape.type.tensor_type.shape.dim] if shape is not None else []
        return linear_head(self.tapped.model, self.final, tuple(dims[2:4]) if len(dims) == 4 else None, self.tapped.weights_dir)

    @property
    def final_shape(self) -> tuple[int, int, int] | None:
        """``(C, h, w)`` of ``F_N`` as the model declares it, or ``None`` when it does not say."""
        shape = self.session.output_shape(self.final)
        if shape is None or len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape[1:]):
            return None
        return tuple(shape[1:])

    @functools.cached_property
    def final_channels(self) -> int:
        """``C`` of ``F_N``: as the model declares it, or, when it does not say, read from one run on a dummy
        input (:func:`pfv_onnx.runtime.probe_tensors`)."""
        if self.final_shape is not None:
            return self.final_shape[0]
        probed = probe_tensors(self.tapped.model, [self.final], self.input, {}, self.tapped.weights_dir)[self.final].shape
        if probed is None or len(probed) != 4:
            raise ModelError(f"the model's output {self.final!r}, read as F_N, has shape {probed}, not (batch, channels, height, width)")
        return int(probed[1])

    @property
    def image_bytes(self) -> int:
        """Memory one image takes on its way through PFV: its model input and its pictures."""
        spec, (height, width) = self.input, self.size
        return height * width * (spec.channels * spec.dtype.itemsize + PICTURE_BYTES_PER_PIXEL)

    def check_batch(self, count: int) -> None:
        """Refuse, with one line, a batch of ``count`` images that would not fit in memory."""
        height, width = self.size
        memory.require(count * self.image_bytes, f"a batch of {plural(count, 'image')} at {height} x {width}", "use smaller batches")

    @functools.cached_property
    def blank(self) -> BlankResponse:
        """The channel sums of ``F_N`` (and ``F_N`` itself, when it is a token grid) and each earlier tap's map for a featureless image
        (:func:`~pfv_onnx.images.preprocess.blank_image`): what the network responds to the frame and padding alone."""
        features = self.forward(self.model_input(blank_image(self.preset, self.size)[None]), maps=True, alongside=None)
        tokens = features.final[0].astype(np.float32) if self.tapped.outputs.tokens else None
        return BlankResponse(channel_sum(features.final)[0], tuple(m[0] for m in features.maps or []), tokens)

    def blank_for(self, weighting: str) -> BlankResponse | None:
        """:attr:`blank` when ``weighting`` subtracts it (``focus``) or ``F_N`` is a token grid (whose
        response it tells apart), else ``None``."""
        return self.blank if weighting == "focus" or self.tapped.outputs.tokens else None

    def class_names(self, logits: np.ndarray | None) -> list[str] | None:
        """Names for the classes of ``(B, K)`` ``logits`` (:mod:`pfv_onnx.images.labels`), ``None`` when unknown."""
        return None if logits is None else self.class_names_for(logits.shape[1])

    def class_names_for(self, count: int) -> list[str] | None:
        """Names for ``count`` classes, ``None`` when unknown; refused when the names are another number."""
        if self.labels is None:
            return None
        if len(self.labels) != count:
            raise PFVError(f"the class names ({self.labels_source}) are {len(self.labels)}, the model gives {count} classes")
        return self.labels

    def describe(self) -> dict[str, Any]:
        """The model (path, SHA-256, input, preset, providers) and its taps, as JSON data."""
        spec = self.input
        return {
            "model": {
                "path": self.model_path,
                "sha256": self.model_sha256,
                "features_sha256": self.features_sha256,
                "input": {"name": spec.name, "layout": spec.layout, "size": list(self.size), "batch": spec.batch},
                "preset": self.preset.name,
                "labels": self.labels_source,
                "providers": self.session.providers,
            },
            "taps": self.taps,
            "final": self.final,
        }

    # ---- images in ----------------------------------------------------------------------------------

    def items(self, images: ImageLike | Sequence[ImageLike] | Batch) -> list[ImageLike]:
        """One entry per image: folders expanded to their images; a preprocessed float batch (a 4-D float
        array, or a :class:`Batch`'s inputs) split into its rows. A single image is a path, a PIL image, a
        2- or 3-D uint8 array, or a float array of the model's input shape (one preprocessed image).

        Raises:
            ImageError: a path that is neither a file nor a folder, a mix of preprocessed and other
                images, or no image at all.
        """
        if isinstance(images, Batch):
            images = images.inputs
        batch = isinstance(images, np.ndarray) and (images.ndim == 4 or (images.dtype.kind == "u" and images.ndim > 3))
        single = isinstance(images, (str, Path, Image.Image)) or (isinstance(images, np.ndarray) and not batch)
        found: list[ImageLike] = []
        for item in [images] if single else list(images):
            found += expand_inputs([item]) if isinstance(item, (str, Path)) else [item]
        if not found:
            raise ImageError("no images given")
        floats = sum(self._preprocessed(item) for item in found)
        if 0 < floats < len(found):
            raise ImageError("a mix of preprocessed float images and other images: give one kind at a time")
        return found

    @staticmethod
    def names(items: Sequence[ImageLike]) -> list[str]:
        """One name per item: a file's stem (also of a PIL image opened from a file), else ``image_<i>``."""
        return [
            Path(item).stem if isinstance(item, (str, Path)) else Path(getattr(item, "filename", "") or "").stem or f"image_{i}"
            for i, item in enumerate(items)
        ]

    def prepare(self, item: ImageLike) -> np.ndarray:
        """One image (a path, a PIL image or a uint8 array) decoded and resized: ``(H0, W0, 3)`` uint8 RGB.

        Raises:
            ImageError: the image cannot be read (one line, naming the file).
        """
        return fit_image(to_image(item), self.size, self.resize)

    def model_input(self, crops: np.ndarray) -> np.ndarray:
        """``(B, H0, W0, 3)`` uint8 RGB crops as the model's float input, normalised by the preset."""
        spec = self.input
        return to_model_input(crops, self.preset, spec.layout, spec.channels, spec.dtype)

    def decode(self, item: ImageLike) -> tuple[np.ndarray | None, np.ndarray]:
        """One item as its ``(H0, W0, 3)`` uint8 crop (``None`` for a preprocessed float row) and its
        ``(1, ...)`` model input."""
        if self._preprocessed(item):
            return None, item[None]
        crop = self.prepare(item)
        return crop, self.model_input(crop[None])

    def load(self, images: ImageLike | Sequence[ImageLike] | Batch) -> Batch:
        """Every image of ``images`` (paths, folders, PIL images, uint8 arrays, or a preprocessed float
        batch in the model's layout) as one :class:`Batch`; a :class:`Batch` as it is."""
        if isinstance(images, Batch):
            return images
        if isinstance(images, np.ndarray) and images.dtype.kind == "f" and images.ndim == 4:  # as it is, not copied
            return Batch(images, None, [f"image_{i}" for i in range(images.shape[0])])
        items = self.items(images)
        if self._preprocessed(items[0]):
            return Batch(np.stack(items), None, self.names(items))
        self.check_batch(len(items))
        crops = np.stack([self.prepare(item) for item in items])
        return Batch(self.model_input(crops), crops, self.names(items))

    def _preprocessed(self, item: ImageLike) -> bool:
        """Whether an item is one preprocessed image: a float array of the model's input shape."""
        return isinstance(item, np.ndarray) and item.dtype.kind == "f" and item.shape == self._image_shape

    @property
    def _image_shape(self) -> tuple[int, int, int]:
        spec = self.input
        return (spec.channels, *self.size) if spec.layout == "NCHW" else (*self.size, spec.channels)

    # ---- the forward pass ---------------------------------------------------------------------------

    def forward(self, inputs: np.ndarray, maps: bool = False, relative: bool = False, alongside: bool | None = False) -> Features:
        """One forward pass (in chunks) of a preprocessed batch in the model's layout.

        Args:
            maps: fetch the per-layer maps ``A_l`` also when ``A^b`` comes from the graph (the paper's
                weighting; the hierarchical one needs them); otherwise they are always fetched. With ``A^b``
                from the graph and no ``maps``, only ``F_N``, ``A^b`` and the logits leave onnxruntime.
            relative: the features are for colours relative to the batch: with the statistics in the graph
                (:attr:`statistics`), ``F_N`` stays in onnxruntime and only its statistics come back.
            alongside: other threads or processes share the cores while it runs (a folder run's decoding
                and writing, a Dask worker's neighbours); ``None``: a pass too small to choose a session for
                (it runs on the one held).
        """
        spec, expected = self.input, self._image_shape
        if inputs.ndim != 4 or tuple(inputs.shape[1:]) != expected:
            raise PFVError(f"expected a batch of shape (B, {', '.join(map(str, expected))}), got {inputs.shape}")
        if inputs.shape[0] < 1:
            raise PFVError("no images to run")
        outputs = self.tapped.outputs
        logits = self.logits_output
        # A^b in the graph (an exported model's) is the paper's: another weighting makes its own from the maps.
        activation = outputs.activation if self.weighting == "paper" else None
        fetch_maps = activation is None or maps
        layer_maps = list(outputs.maps) if fetch_maps else []
        stats = outputs.statistics if self.statistics and relative else None
        fetched = [outputs.final] if stats is None else list(stats[:2])  # F_N, or what the PCA needs of it
        names = [*fetched, *layer_maps, *([activation] if activation else []), *([logits] if logits else [])]
        left = {"per_run": stats[2:], "kept": [outputs.final]} if stats else {}
        values = self._sessions.for_pass(alongside).run(np.ascontiguousarray(inputs, dtype=spec.dtype), names, self.chunk_size, **left)
        if stats:  # F_N is read from the device only if something asks for it
            final = lambda: _feature_map({outputs.final: values[outputs.final].fetch()}, outputs.final, "F_N")  # noqa: E731
        else:
            final = _feature_map(values, outputs.final, "F_N")
        return Features(
            final=final,
            maps=[_feature_map(values, name, "a channel-sum map", 1)[:, 0] for name in layer_maps] if fetch_maps else None,
            activation=_feature_map(values, activation, "A^b", 1)[:, 0] if activation else None,
            logits=np.asarray(values[logits], dtype=np.float32).reshape(inputs.shape[0], -1) if logits else None,
            statistics=self._statistics(values, stats) if stats else None,
        )

    def _statistics(self, values: dict[str, Any], names: tuple[str, str, str]) -> FinalStatistics:
        """:class:`FinalStatistics` from the graph's outputs ``names`` (:data:`pfv_onnx.graph.rewrite.STATISTICS`):
        each run's scatter about its own mean, merged (Chan et al.) with the means its images' sums give. A
        run padded with copies of its last image (a fixed batch) is read from ``F_N`` itself instead."""
        final_sum = _feature_map(values, names[0], "F_N's channel sum", 1)[:, 0]
        sums = np.asarray(values[names[1]], np.float64)
        batch, (height, width), channels = final_sum.shape[0], final_sum.shape[1:], sums.shape[-1]
        kept = values[self.final]
        moments, start = None, 0
        for i, run in enumerate(values[names[2]]):
            if sums.shape != (batch, channels) or run.value.shape != (channels, channels):
                raise ModelError(f"the model's statistics of F_N have shapes {sums.shape} and {run.value.shape}, not ({batch}, C) and (C, C)")
            if run.padded:
                part = FeatureMoments.of(feature_matrix(kept.chunk(i)), [], run.used)
            else:
                count = run.used * height * width
                part = FeatureMoments(count, sums[start : start + run.used].sum(axis=0) / count, run.value.astype(np.float64), (), run.used)
            moments = part if moments is None else moments.merge(part)
            start += run.used
        assert moments is not None
        return FinalStatistics(final_sum, moments.mean, moments.scatter, (batch, channels, height, width), kept.project)

    @functools.cached_property
    def logits_output(self) -> str | None:
        """The first kept model output shaped like class scores: ``(B, K)`` or ``(B, K, 1, 1)``."""
        for name in self.tapped.outputs.original:
            shape = self.session.output_shape(name)
            if name == self.final or shape is None or not shape:
                continue
            batched = not isinstance(shape[0], int) or shape[0] == self.session.fixed_batch
            if batched and (len(shape) == 2 or (len(shape) == 4 and shape[2:] == [1, 1])):
                return name
        return None


def _feature_map(values: dict[str, np.ndarray], name: str, role: str, channels: int | None = None) -> np.ndarray:
    """Output ``name`` as float32 (fp16 models), refused unless it is a ``(B, C, h, w)`` map (with
    ``channels`` channels when given): a tapped model's metadata may name any of its outputs."""
    value = np.asarray(values[name], dtype=np.float32)
    if value.ndim != 4 or (channels is not None and value.shape[1] != channels):
        expected = f"(batch, {channels}, height, width)" if channels else "(batch, channels, height, width)"
        raise ModelError(f"the model's output {name!r}, read as {role}, has shape {list(value.shape)}, not {expected}")
    return value


def _metadata(model: onnx.ModelProto, key: str) -> str | None:
    return next((p.value for p in model.metadata_props if p.key == key), None)
