"""One onnxruntime session over a model, run in chunks the model accepts."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx

from ..errors import ModelError, PFVError, RuntimeMissingError, first_line
from ..graph import external_tensors

# Preferred order when the user names none; the first installed and usable one wins, CPU always last.
PREFERRED = ("CUDAExecutionProvider", "CPUExecutionProvider")


# Images per inference call when the caller names no chunk size. On the CPU small chunks keep a chunk's
# activations in the cache: measured on 2 cores, MobileNetV2 and EfficientNet-Lite0 run 12-16% faster per
# image in chunks of 8 than in one call of 32 (20% in chunks of 4), while VGG16 and ResNet50 stay within
# 2.5% (chunks of 4 cost them up to 4%). On the CPU the outputs of all four were the same to the bit
# whatever the chunk (tests/test_real_models.py checks MobileNetV2). Accelerators take larger batches.
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
            runs, but they take the cores from whatever else the process does meanwhile).
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
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: warnings about unused initializers are noise here
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is not None:
            options.intra_op_num_threads = int(threads)
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

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def run(self, batch: np.ndarray, outputs: Sequence[str] | None = None, chunk_size: int | None = None) -> dict[str, np.ndarray]:
        """Run ``batch`` (``(B, ...)``, ``B >= 1``) and return each requested output concatenated over ``B``.

        A model with a fixed batch ``n`` runs in chunks of exactly ``n`` (the last one padded with copies of
        its last image, whose outputs are dropped); a dynamic batch runs in chunks of ``chunk_size``
        (all at once when ``None``). Every requested output must have the batch as its first axis.
        """
        names = list(dict.fromkeys(outputs if outputs is not None else self.output_names))
        total = batch.shape[0]
        if total < 1:
            raise PFVError("no images to run")
        if chunk_size is not None and chunk_size < 1:
            raise PFVError(f"chunk_size must be at least 1, got {chunk_size}")
        step = self.fixed_batch or chunk_size or total
        parts: dict[str, list[np.ndarray]] = {name: [] for name in names}
        for start in range(0, total, step):
            chunk = batch[start : start + step]
            used = chunk.shape[0]
            if self.fixed_batch is not None and used < step:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - used, axis=0)])
            results = self._run_interruptibly(chunk, names)
            for name, value in zip(names, results):
                if value.ndim == 0 or value.shape[0] != chunk.shape[0]:
                    raise ModelError(f"output {name!r} has shape {list(value.shape)}, without the batch as its first axis")
                parts[name].append(value[:used])
        return {name: values[0] if len(values) == 1 else np.concatenate(values) for name, values in parts.items()}

    def _run_interruptibly(self, chunk: np.ndarray, names: list[str]) -> list[np.ndarray]:
        """One inference call, run by a helper thread while this one waits, so that Ctrl-C reaches Python
        during a long run (a model with a Loop of a trillion steps); onnxruntime is then told to stop, and
        the interrupt goes on."""
        options = onnxruntime().RunOptions()
        options.log_severity_level = 4  # its failures become one line here, not a log on stderr as well
        outcome: dict[str, Any] = {}
        finished = threading.Event()

        def call() -> None:
            try:
                outcome["value"] = self._run_chunk(chunk, names, options)
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

    def _run_chunk(self, chunk: np.ndarray, names: list[str], options: Any) -> list[np.ndarray]:
        if not self.binding:
            return self._session.run(names, {self.input_name: chunk}, options)
        binding = self._session.io_binding()
        binding.bind_cpu_input(self.input_name, np.ascontiguousarray(chunk))
        for name in names:
            binding.bind_output(name, "cpu")
        self._session.run_with_iobinding(binding, options)
        return binding.copy_outputs_to_cpu()

    def output_shape(self, name: str) -> list[int | str | None] | None:
        """The declared shape of output ``name`` (ints, symbolic names or ``None``), ``None`` if unknown."""
        output = next((o for o in self._session.get_outputs() if o.name == name), None)
        return None if output is None else list(output.shape)
