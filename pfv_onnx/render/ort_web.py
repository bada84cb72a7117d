"""onnxruntime-web, the runtime the web page runs models with: one pinned release from the npm registry.

The page needs two files of the package: the JavaScript API with its WebAssembly glue bundled in, and the
WebAssembly binary. They are taken from the package's tarball (``npm pack onnxruntime-web@VERSION``), given
by the user or fetched once from the registry into a cache folder, and checked against the SHA-512 the
registry publishes for that release: nothing else is trusted, and nothing is fetched when the page is viewed.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import os
import tarfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path

from ..errors import PFVError
from ..util.files import atomic_path, read_file

VERSION = "1.30.0"
# The registry's "integrity" of the tarball of VERSION (npm view onnxruntime-web@1.30.0 dist.integrity).
INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
URL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{VERSION}.tgz"
# The API with its WebAssembly glue in one ES module, and the single-threaded-capable SIMD binary.
MODULE = "package/dist/ort.wasm.bundle.min.mjs"
WASM = "package/dist/ort-wasm-simd-threaded.wasm"
NOTICE = (
    f"onnxruntime-web {VERSION} (https://www.npmjs.com/package/onnxruntime-web), from the npm registry.\n"
    "Copyright (c) Microsoft Corporation. Licensed under the MIT License.\n"
)
# The tarball is about 33 MB; anything much larger is not it.
MAX_BYTES = 128 * 2**20


def cache_folder() -> Path:
    """Where the fetched tarball is kept: ``$PFV_ONNX_CACHE``, else ``$XDG_CACHE_HOME/pfv-onnx``, else
    ``~/.cache/pfv-onnx``."""
    if os.environ.get("PFV_ONNX_CACHE"):
        return Path(os.environ["PFV_ONNX_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pfv-onnx"


def runtime_files(tarball: str | Path | None = None) -> tuple[str, bytes]:
    """The page's runtime: the ES module's source text and the WebAssembly binary.

    Args:
        tarball: onnxruntime-web's ``.tgz`` of :data:`VERSION` (as ``npm pack`` writes it); ``None``: the
            cached one, fetched from the npm registry when it is not there yet.
    """
    if tarball is not None:
        data = _read(Path(tarball))
        _check(data, str(tarball))
    else:
        cached = cache_folder() / f"onnxruntime-web-{VERSION}.tgz"
        data = _read(cached) if cached.is_file() else None
        if data is None or not _intact(data):  # not there yet, or damaged since: fetched again
            data = _fetch(cached)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        module, wasm = (archive.extractfile(name) for name in (MODULE, WASM))
        assert module is not None and wasm is not None  # the checked tarball holds both
        return module.read().decode("utf-8"), wasm.read()


def _read(path: Path) -> bytes:
    try:
        return read_file(path, MAX_BYTES, f"onnxruntime-web {VERSION}'s tarball")
    except OSError as exc:
        raise PFVError(f"{path}: cannot read onnxruntime-web ({exc.strerror})") from None


def _fetch(cached: Path) -> bytes:
    """The tarball from the registry, checked, and kept in ``cached`` when the cache folder can be written."""
    try:
        with urllib.request.urlopen(URL, timeout=60) as response:
            data = response.read(MAX_BYTES + 1)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise PFVError(
            f"cannot fetch onnxruntime-web {VERSION} from the npm registry ({getattr(exc, 'reason', exc)}): "
            f"give its tarball with --ort-web (npm pack onnxruntime-web@{VERSION})"
        ) from None
    _check(data, URL)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cached) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:  # an unwritable cache costs a fetch next time, nothing else
        warnings.warn(f"cannot keep onnxruntime-web in {cached.parent} ({exc.strerror}): it is fetched again next time", stacklevel=2)
    return data


def _intact(data: bytes) -> bool:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode() == INTEGRITY


def _check(data: bytes, where: str) -> None:
    """Refuse anything but the registry's tarball of :data:`VERSION`."""
    if not _intact(data):
        raise PFVError(f"{where}: not onnxruntime-web {VERSION} as the npm registry publishes it (its SHA-512 differs)")
