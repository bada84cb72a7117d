"""One onnxruntime session over a model, run in chunks the model accepts."""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from ..errors import ModelError, PFVError, RuntimeMissingError, first_line
from ..graph import external_tensors, projection_model

# Preferred order when the user names none; the first installed and usable one wins, CPU always last.
PREFERRED = ("CUDAExecutionProvider", "CPUExecutionProvider")


# Where each provider's outputs live when they stay in onnxruntime (anything else: host memory).
DEVICES = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda"}

# Images per inference call when the caller names no chunk size. On the CPU small chunks keep a chunk's
# activations in the cache: measured on 2 cores, MobileNetV2 and EfficientNet-Lite0 run 12-16% faster per
# image in chunks of 8 than in one call of 32 (20% in chunks of 4), while VGG16 and ResNet50 stay within
# 2.5% (chunks of 4 cost them up to 4%). On the CPU the outputs of all four were the same to the bit
# whatever the chunk (tests/runtime/test_real_models.py checks MobileNetV2). Accelerators take larger batches.
DEFAULT_CHUNK = {"CPUExecutionProvider": 8}
ACCELERATOR_CHUNK = 32
# How long an interrupted run may take to stop after onnxruntime is told to.
STOP_WAIT_S = 10.0
WAKE_S = 0.1


def default_chunk(providers: Sequence[str]) -> int:
    """Images per call on the first of ``providers`` (see :data:`DEFAULT_CHUNK`)."""
    return DEFAULT_CHUNK.get(providers[0], ACCELERATOR_CHUNK) if providers else ACCELERATOR_CHUNK


def onnxruntime() -> ModuleType:
    """The onnxruntime module, or a one-line error naming the extras that install it."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError:
        raise RuntimeMissingError(
            "onnxruntime is not installed: pip install 'pfv-onnx[cpu]' (onnxruntime) "
            "or 'pfv-onnx[gpu]' (onnxruntime-gpu)"
        ) from None


def available_providers() -> list[str]:
    return list(onnxruntime().get_available_providers())


def default_providers() -> list[str]:
    """CUDA when the installed onnxruntime offers it, then CPU."""
    available = set(available_providers())
    return [p for p in PREFERRED if p in available]


def resolve_providers(providers: Sequence[str] | None) -> list[str]:
    """Provider names as onnxruntime spells them; ``"cuda"`` means ``CUDAExecutionProvider``."""
    if providers is None:
        return default_providers()
    available = {p.lower(): p for p in available_providers()}
    resolved = []
    for asked in providers:
        full = asked if asked.lower().endswith("executionprovider") else f"{asked}ExecutionProvider"
        if full.lower() not in available:
            raise PFVError(f"execution provider {asked!r} is not available here (available: {', '.join(available.values())})")
        resolved.append(available[full.lower()])
    if "CPUExecutionProvider" not in resolved:
        resolved.append("CPUExecutionProvider")
    return resolved


class Session:
    """An onnxruntime ``InferenceSession`` for a model with one image input.

    Args:
        model: ``ModelProto`` or serialised bytes.
        providers: execution providers (``"CUDA"``, ``"CPUExecutionProvider"``, ...); ``None`` picks
            :func:`default_providers`. An explicit list wins; CPU is appended as the fallback.
        threads: intra-op threads (``None``: onnxruntime's default).
        spin: let onnxruntime's threads spin while they wait for work, within a run and after it (faster
            runs, but they take the cores from whatever else the process does meanwhile). Kept as ``spin``.
        binding: run through I/O binding (default: when the first provider is not the CPU).
        weights_dir: the folder of the model's external weight files (:func:`pfv_onnx.graph.weights_folder`);
            needed when its weights are not inside it.
    """

    def __init__(
        self,
        model: onnx.ModelProto | bytes,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
        spin: bool = True,
        binding: bool | None = None,
        weights_dir: Path | None = None,
    ):
        ort = onnxruntime()
        self._threads, self.spin = threads, spin
        options = self._options()
        if weights_dir is not None:
            # The graph goes as bytes, its external weights are read from their folder.
            options.add_session_config_entry("session.model_external_initializers_file_folder_path", str(weights_dir))
        elif isinstance(model, onnx.ModelProto) and external_tensors(model):
            raise ModelError("the model's weights are in external files: open it by its path, so that they are read from its folder")
        data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else model
        try:
            self._session = ort.InferenceSession(data, options, providers=resolve_providers(providers))
        except PFVError:
            raise
        except Exception as exc:
            raise ModelError(f"onnxruntime cannot load the model: {first_line(exc)}") from None
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"expected one model input, found {len(inputs)}")
        self.input_name: str = inputs[0].name
        batch = inputs[0].shape[0]
        self.fixed_batch: int | None = batch if isinstance(batch, int) and batch > 0 else None
        self.output_names: list[str] = [o.name for o in self._session.get_outputs()]
        # On an accelerator, I/O binding: the input goes to the device once and only the requested outputs
        # (A^b or the small per-layer maps, F_N, the logits) come back, into host buffers onnxruntime sizes.
        self.binding = self.providers[0] != "CPUExecutionProvider" if binding is None else binding
        self._projections: dict[str, Any] = {}

    def _options(self) -> Any:
        options = onnxruntime().SessionOptions()
        options.graph_optimization_level = onnxruntime().GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: warnings about unused initializers are noise here
        if not self.spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self._threads is not None:
            options.intra_op_num_threads = int(self._threads)
        return options

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def run(
        self, batch: np.ndarray, outputs: Sequence[str] | None = None, chunk_size: int | None = None, per_run: Sequence[str] = (), kept: Sequence[str] = (),
        strict_batch: bool = True,
    ) -> dict[str, Any]:
        """Run ``batch`` (``(B, ...)``, ``B >= 1``) and return each requested output concatenated over ``B``.

        A model with a fixed batch ``n`` runs in chunks of exactly ``n`` (the last one padded with copies of
        its last image, whose outputs are dropped); a dynamic batch runs in chunks of ``chunk_size``
        (all at once when ``None``). Every requested output must have the batch as its first axis, except:

        Args:
            per_run: outputs that describe a whole run (a leading axis of 1): each is a list of
                :class:`RunValue`, one per chunk.
            kept: outputs left in onnxruntime, on the provider's device: each is a :class:`KeptOutput`.
            strict_batch: refuse an output whose first axis is not the batch; without it, such an output of
                a run in one chunk is returned whole (the shape probe reads every tensor it is asked for).
        """
        names = list(dict.fromkeys(outputs if outputs is not None else self.output_names))
        per_run, kept = list(per_run), list(kept)
        total = batch.shape[0]
        if total < 1:
            raise PFVError("no images to run")
        if chunk_size is not None and chunk_size < 1:
            raise PFVError(f"chunk_size must be at least 1, got {chunk_size}")
        step = self.fixed_batch or chunk_size or total
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        runs: dict[str, list[RunValue]] = {name: [] for name in per_run}
        stored = {name: KeptOutput(self) for name in kept}
        for start in range(0, total, step):
            chunk = batch[start : start + step]
            used = chunk.shape[0]
            if self.fixed_batch is not None and used < step:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - used, axis=0)])
            results, values = self._run_interruptibly(chunk, names + per_run, kept)
            for name, value in zip(names, results):
                if value.ndim == 0 or value.shape[0] != chunk.shape[0]:
                    if strict_batch or step < total:
                        raise ModelError(f"output {name!r} has shape {list(value.shape)}, without the batch as its first axis")
                    parts[name].append(value)
                    continue
                parts[name].append(value[:used])
            for name, value in zip(per_run, results[len(names) :]):
                runs[name].append(RunValue(value[0], used, used < chunk.shape[0]))
            for name, value in zip(kept, values):
                stored[name].add(value, used)
        found = {name: values[0] if len(values) == 1 else np.concatenate(values) for name, values in parts.items()}
        return {**found, **runs, **stored}

    def _run_interruptibly(self, chunk: np.ndarray, names: list[str], kept: list[str]) -> tuple[list[np.ndarray], list[Any]]:
        """One inference call, run by a helper thread while this one waits, so that Ctrl-C reaches Python
        during a long run (a model with a Loop of a trillion steps); onnxruntime is then told to stop, and
        the interrupt goes on."""
        options = onnxruntime().RunOptions()
        options.log_severity_level = 4  # its failures become one line here, not a log on stderr as well
        outcome: dict[str, Any] = {}
        finished = threading.Event()

        def call() -> None:
            try:
                outcome["value"] = self._run_chunk(chunk, names, kept, options)
            except BaseException as exc:  # raised in the calling thread
                outcome["error"] = exc
            finally:
                finished.set()

        # A daemon thread: one that a kernel keeps busy past the interrupt does not hold the process's exit.
        # Started inside the try: an interrupt while start() waits for the thread must still stop the run.
        try:
            threading.Thread(target=call, name="pfv-run", daemon=True).start()
            # Waited for in short steps: Ctrl-C may be delivered to the running thread, and only a main thread
            # that wakes now and then runs Python's handler and raises KeyboardInterrupt.
            while not finished.wait(WAKE_S):
                pass
        except KeyboardInterrupt:
            options.terminate = True  # onnxruntime stops between two operators
            finished.wait(STOP_WAIT_S)
            raise
        if "error" in outcome:
            raise ModelError(f"onnxruntime failed to run the model: {first_line(outcome['error'])}") from None
        return outcome["value"]

    def _run_chunk(self, chunk: np.ndarray, names: list[str], kept: list[str], options: Any) -> tuple[list[np.ndarray], list[Any]]:
        """One call: the outputs ``names`` as arrays, and the OrtValues of ``kept`` where onnxruntime made them."""
        if not self.binding and not kept:
            return self._session.run(names, {self.input_name: chunk}, options), []
        binding = self._session.io_binding()
        binding.bind_cpu_input(self.input_name, np.ascontiguousarray(chunk))
        for name in names:
            binding.bind_output(name, "cpu")
        for name in kept:
            binding.bind_output(name, self.device)
        self._session.run_with_iobinding(binding, options)
        values = binding.get_outputs()
        return [value.numpy() for value in values[: len(names)]], list(values[len(names) :])

    @property
    def device(self) -> str:
        """onnxruntime's name of the memory the first provider computes in."""
        return DEVICES.get(self.providers[0], "cpu")

    def projection(self, elem_type: str) -> Any:
        """A session on the same providers and options for :func:`pfv_onnx.graph.projection_model` of features
        of ``elem_type`` (onnxruntime's name: ``tensor(float)``, ``tensor(float16)``), made when first used."""
        if elem_type not in self._projections:
            kind = TensorProto.FLOAT16 if elem_type == "tensor(float16)" else TensorProto.FLOAT
            model = projection_model(kind).SerializeToString()
            self._projections[elem_type] = onnxruntime().InferenceSession(model, self._options(), providers=self.providers)
        return self._projections[elem_type]

    def output_shape(self, name: str) -> list[int | str | None] | None:
        """The declared shape of output ``name`` (ints, symbolic names or ``None``), ``None`` if unknown."""
        output = next((o for o in self._session.get_outputs() if o.name == name), None)
        return None if output is None else list(output.shape)


# Models whose weights are at most this size are light (MobileNetV2 and EfficientNet-Lite0 are 14 and 19 MB).
LIGHT_MODEL_BYTES = 32 * 2**20


class SessionByUse:
    """A model's session for each pass, by what else runs beside it.

    On the CPU, onnxruntime's threads spin between operators only in a light model's lone pass: there the
    gaps between many small operators are a large part of the pass, and spinning threads fill them without
    waking up. In a folder run the threads that decode and write would lose the cores to them, and a heavy
    model's pass is spent inside large operators. The setting is fixed when a session is made, so a light
    model's session is made again when its use changes (cheap for a light model); one session is held at a
    time. An accelerator's session is never made again.
    """

    def __init__(self, model: onnx.ModelProto, providers: Sequence[str], threads: int | None, weights_dir: Path | None):
        self._made = functools.partial(Session, model, providers, threads, weights_dir=weights_dir)
        self._light = providers[0] == "CPUExecutionProvider" and weights_dir is None and model.ByteSize() <= LIGHT_MODEL_BYTES
        self._lock = threading.Lock()
        self.current: Session = self._made(spin=self._light)

    def for_pass(self, alongside: bool | None) -> Session:
        """The session for a pass that other threads work beside (``alongside``: a folder run's), or not;
        ``None``: whichever is held (a pass too small to be worth a new session)."""
        if alongside is None:
            return self.current
        spin = self._light and not alongside
        with self._lock:  # two threads of one process may each run passes
            if self.current.spin != spin:
                self.current = self._made(spin=spin)
            return self.current


@dataclass(frozen=True)
class RunValue:
    """An output that describes a whole run (a leading axis of 1): its ``value`` for one chunk of ``used``
    images, and whether the chunk was ``padded`` with copies of its last image (which the value includes)."""

    value: np.ndarray
    used: int
    padded: bool


class KeptOutput:
    """An output left in onnxruntime, chunk by chunk, on the provider's device: read with :meth:`fetch`
    (whole) or :meth:`chunk`, or as the projection of its pixels on a few directions with :meth:`project`,
    which brings back only the ``k`` projected channels."""

    def __init__(self, session: Session):
        self._session = session
        self._chunks: list[tuple[Any, int]] = []
        self._fetched: np.ndarray | None = None

    def add(self, value: Any, used: int) -> None:
        self._chunks.append((value, used))

    def chunk(self, i: int) -> np.ndarray:
        """Chunk ``i`` as an array (padding dropped)."""
        value, used = self._chunks[i]
        return _on_device(lambda: value.numpy()[:used])

    def fetch(self) -> np.ndarray:
        """The whole output as an array (its images concatenated, padding dropped); the device's copy is
        released."""
        if self._fetched is None:
            self._fetched = np.concatenate([self.chunk(i) for i in range(len(self._chunks))])
            self._chunks = []
        return self._fetched

    def project(self, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
        """``(B, h, w, k)`` float32 ``(F - mean) @ components.T`` of a ``(B, C, h, w)`` feature map, computed
        where it is (``mean`` ``(C,)``, ``components`` ``(k, C)``)."""
        if self._fetched is not None:
            return ((self._fetched.transpose(0, 2, 3, 1) - mean) @ components.T).astype(np.float32)
        mean32 = np.ascontiguousarray(mean, dtype=np.float32).reshape(1, -1, 1, 1)
        weights = np.ascontiguousarray(components, dtype=np.float32)
        return np.concatenate([_on_device(lambda: self._project(value, used, mean32, weights)) for value, used in self._chunks])

    def _project(self, value: Any, used: int, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
        session = self._session.projection(value.data_type())
        binding = session.io_binding()
        binding.bind_ortvalue_input("features", value)
        binding.bind_cpu_input("mean", mean)
        binding.bind_cpu_input("components", components)
        binding.bind_output("scores", "cpu")
        session.run_with_iobinding(binding)
        _, _, height, width = value.shape()
        scores = binding.get_outputs()[0].numpy()[:used]
        return scores.reshape(used, -1, height, width).transpose(0, 2, 3, 1)


def _on_device(read: Callable[[], np.ndarray]) -> np.ndarray:
    """``read()``, with onnxruntime's failures as one line."""
    try:
        return read()
    except PFVError:
        raise
    except Exception as exc:
        raise ModelError(f"onnxruntime failed to read F_N on the device: {first_line(exc)}") from None
