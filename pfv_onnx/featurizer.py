"""The model side of PFV: a model tapped, in one onnxruntime session, with the preprocessing its preset
names; images in, :class:`~pfv_onnx.features.Features` out.

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

from . import bundled
from .errors import ImageError, PFVError
from .features import Batch, Features
from .graph import InputSpec, LinearHead, image_input, linear_head, load_model, model_sha256, weights_folder
from .options import Options
from .preprocess import expand_inputs, fit_image, to_image, to_model_input
from .presets import DEFAULT_PRESET, Preset, get_preset
from .runtime import Session, default_chunk, resolve_providers
from .tapping import TappedModel, tap_model

ImageLike = Union[str, Path, Image.Image, np.ndarray]
ModelLike = Union[str, Path, bytes, onnx.ModelProto]
PRESET_METADATA_KEY = "preset"


class Featurizer:
    """A model made ready for PFV.

    Args:
        model: a bundled model's name, an ``.onnx`` path, bytes or a ``ModelProto`` (tapped by
            :func:`pfv_onnx.export` or not).
        options: the ``model``, ``images``, ``runtime`` and ``export`` fields of :class:`~pfv_onnx.Options`
            are read here.
        labels: class names for the model's output; default the bundled ImageNet names for 1000 classes.
    """

    def __init__(self, model: ModelLike = bundled.DEFAULT_MODEL, options: Options | None = None, labels: Sequence[str] | None = None):
        options = options or Options()
        resolved = bundled.resolve_model(model) if isinstance(model, (str, Path)) else model
        self.model_path = str(resolved) if isinstance(resolved, (str, Path)) else None
        source = load_model(resolved)
        # A model given in memory is identified by its bytes (hashed when first asked).
        self._in_memory = None if self.model_path is not None else (bytes(resolved) if isinstance(resolved, (bytes, bytearray)) else source)
        self.providers = resolve_providers(options.providers)
        in_graph = options.activation_in_graph
        if in_graph is None:  # on the CPU, upsampling the small per-layer maps in OpenCV costs less
            in_graph = self.providers[0] != "CPUExecutionProvider"
        spec = image_input(source)
        self.tapped: TappedModel = tap_model(
            source, list(options.layers) if options.layers else None, options.final, options.keep_logits, in_graph,
            size=options.size or spec.size_or_default, weights_dir=weights_folder(resolved, source),
        )
        # No spinning: the NumPy core runs right after each forward pass, and in a folder run the threads that
        # decode and write run during it; they need the cores (spinning made a single large batch faster
        # but a folder run slower).
        self.session = Session(self.tapped.model, self.providers, options.threads, spin=False, weights_dir=self.tapped.weights_dir)
        self.preset: Preset = get_preset(options.preset or _metadata(source, PRESET_METADATA_KEY) or DEFAULT_PRESET)
        self.resize = options.resize
        self.chunk_size: int | None = default_chunk(self.providers) if options.chunk_size == "auto" else options.chunk_size
        self._labels = list(labels) if labels is not None else None

    # ---- the model ----------------------------------------------------------------------------------

    @property
    def input(self) -> InputSpec:
        return self.tapped.input

    @property
    def size(self) -> tuple[int, int]:
        """``(H0, W0)``, the image size fed to the model."""
        return self.input.size_or_default

    @property
    def taps(self) -> list[str]:
        """Tensor names feeding ``A^b``, in graph order."""
        return list(self.tapped.outputs.taps)

    @property
    def final(self) -> str:
        """Tensor name of ``F_N``."""
        return self.tapped.outputs.final

    @functools.cached_property
    def model_sha256(self) -> str | None:
        """SHA-256 of the model file (for a model exported by pfv-onnx, of the model it was exported from),
        or of the serialised model given in memory."""
        if self.tapped.outputs.source_sha256:
            return self.tapped.outputs.source_sha256
        if self.model_path is not None:
            return model_sha256(self.model_path)
        data = self._in_memory
        return model_sha256(data if isinstance(data, bytes) else data.SerializeToString())

    @functools.cached_property
    def head(self) -> LinearHead | None:
        """The classifier head when it is global average pooling and one linear layer (for CAM), else ``None``."""
        shape = next((o for o in self.tapped.model.graph.output if o.name == self.final), None)
        dims = [d.dim_value for d in shape.type.tensor_type.shape.dim] if shape is not None else []
        return linear_head(self.tapped.model, self.final, tuple(dims[2:4]) if len(dims) == 4 else None)

    def class_names(self, logits: np.ndarray | None) -> list[str] | None:
        """Names for the classes of ``logits``: the given labels, else ImageNet's for 1000 classes."""
        if self._labels is not None:
            return self._labels
        if logits is not None and logits.shape[1] == 1000:
            return bundled.imagenet_labels()
        return None

    def describe(self) -> dict[str, Any]:
        """The model (path, SHA-256, input, preset, providers) and its taps, as JSON data."""
        spec = self.input
        return {
            "model": {
                "path": self.model_path,
                "sha256": self.model_sha256,
                "input": {"name": spec.name, "layout": spec.layout, "size": list(self.size), "batch": spec.batch},
                "preset": self.preset.name,
                "providers": self.session.providers,
            },
            "taps": self.taps,
            "final": self.final,
        }

    # ---- images in ----------------------------------------------------------------------------------

    def items(self, images: ImageLike | Sequence[ImageLike] | Batch) -> list[ImageLike]:
        """One entry per image: folders expanded to their images; a preprocessed float batch (or a
        :class:`Batch`'s inputs) split into its rows.

        Raises:
            ImageError: a path that is neither a file nor a folder, or no image at all.
        """
        if isinstance(images, Batch):
            images = images.inputs
        if isinstance(images, np.ndarray) and images.dtype.kind == "f":
            found: list[ImageLike] = list(images)
        else:
            single = isinstance(images, (str, Path, Image.Image)) or (isinstance(images, np.ndarray) and images.ndim <= 3)
            found = []
            for item in [images] if single else list(images):
                found += expand_inputs([item]) if isinstance(item, (str, Path)) else [item]
        if not found:
            raise ImageError("no images given")
        return found

    @staticmethod
    def names(items: Sequence[ImageLike]) -> list[str]:
        """One name per item: a file's stem, else ``image_<i>``."""
        return [Path(item).stem if isinstance(item, (str, Path)) else f"image_{i}" for i, item in enumerate(items)]

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
        if isinstance(item, np.ndarray) and item.dtype.kind == "f":
            return None, item[None]
        crop = self.prepare(item)
        return crop, self.model_input(crop[None])

    def load(self, images: ImageLike | Sequence[ImageLike] | Batch) -> Batch:
        """Every image of ``images`` (paths, folders, PIL images, uint8 arrays, or a preprocessed float
        batch in the model's layout) as one :class:`Batch`; a :class:`Batch` as it is."""
        if isinstance(images, Batch):
            return images
        if isinstance(images, np.ndarray) and images.dtype.kind == "f":
            return Batch(images, None, [f"image_{i}" for i in range(images.shape[0])])
        items = self.items(images)
        crops = np.stack([self.prepare(item) for item in items])
        return Batch(self.model_input(crops), crops, self.names(items))

    # ---- the forward pass ---------------------------------------------------------------------------

    def forward(self, inputs: np.ndarray, maps: bool = False) -> Features:
        """One forward pass (in chunks) of a preprocessed batch in the model's layout.

        Args:
            maps: fetch the per-layer maps ``A_l`` when the graph computes ``A^b`` (the hierarchical
                weighting needs them); without ``A^b`` in the graph they are always fetched. Otherwise only
                ``F_N``, ``A^b`` and the logits leave onnxruntime.
        """
        spec = self.input
        expected = (spec.channels, *self.size) if spec.layout == "NCHW" else (*self.size, spec.channels)
        if inputs.ndim != 4 or tuple(inputs.shape[1:]) != expected:
            raise PFVError(f"expected a batch of shape (B, {', '.join(map(str, expected))}), got {inputs.shape}")
        if inputs.shape[0] < 1:
            raise PFVError("no images to run")
        outputs = self.tapped.outputs
        logits = self._logits_output
        fetch_maps = outputs.activation is None or maps
        layer_maps = list(outputs.maps) if fetch_maps else []
        names = [outputs.final, *layer_maps, *([outputs.activation] if outputs.activation else []), *([logits] if logits else [])]
        values = self.session.run(np.ascontiguousarray(inputs, dtype=spec.dtype), names, self.chunk_size)
        as32 = lambda name: np.asarray(values[name], dtype=np.float32)  # noqa: E731  (fp16 models)
        return Features(
            final=as32(outputs.final),
            maps=[as32(name)[:, 0] for name in layer_maps] if fetch_maps else None,
            activation=as32(outputs.activation)[:, 0] if outputs.activation else None,
            logits=as32(logits).reshape(inputs.shape[0], -1) if logits else None,
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


def _metadata(model: onnx.ModelProto, key: str) -> str | None:
    return next((p.value for p in model.metadata_props if p.key == key), None)
