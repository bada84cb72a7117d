"""``pfv-onnx web MODEL.pfv.onnx --out DIR``: a static page that runs a model exported with a basis in the
browser (onnxruntime-web) and draws the PFV picture of the photos a user drops on it.

The folder holds ``index.html`` and the scripts it loads: the page's config, the resize that matches
:func:`pfv_onnx.images.preprocess.fit_image` bit for bit, onnxruntime-web, the model and optional sample photos,
each inlined as a classic script. A page opened from ``file://`` may neither fetch files nor import modules,
so it works from the disk as well as from any static server, and fetches nothing when viewed.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import os
import string
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..images import bundled
from ..util.console import plural, say
from ..errors import ImageError, ModelError, PFVError
from ..runtime.featurizer import Featurizer
from ..util.files import read_file
from ..graph import load_with_weights
from ..analyses.in_graph import PictureOutput, read_picture_output
from ..options import Options
from ..images.preprocess import BACKGROUND, load_image
from ..render import ort_web

PAGE = resources.files("pfv_onnx") / "render" / "webpage"
# A sample photo is inlined in the page (base64): larger files would make a page browsers load slowly.
MAX_SAMPLE_BYTES = 32 * 2**20
MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".gif": "image/gif", ".bmp": "image/bmp"}


def run(args: argparse.Namespace, options: Options) -> int:
    out = Path(args.out)  # checked and held by the command line (OUTPUTS)
    files = page_files(args.model, args.samples or [], args.ort_web)
    write_folder(out, files)
    if not args.quiet:
        say(f"wrote {out / 'index.html'}: open it in a browser ({plural(len(args.samples or []), 'sample photo')} inside; drop more on it)")
    return 0


def write_folder(out: Path, files: dict[str, str]) -> None:
    """The page's files, written in a hidden folder inside ``out`` and moved out of it together: a failure
    leaves no half-written page."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".pfv-web-") as staging:
        for name, text in files.items():
            (Path(staging) / name).write_text(text, encoding="utf-8")
        for name in files:
            os.replace(Path(staging) / name, out / name)


def page_files(model_path: str, samples: list[str], tarball: str | None) -> dict[str, str]:
    """The page's files by name: everything is read and checked before anything is written."""
    model = load_with_weights(bundled.resolve_model(model_path))
    picture = read_picture_output(model)
    if picture is None:
        raise PFVError(f"{model_path}: has no PFV picture output; export it with a basis first (pfv-onnx export MODEL DST --basis B)")
    config = _config(Featurizer(model_path), picture)  # the input, preset and class names as PFV reads them
    photos = [_sample(path) for path in samples]
    try:
        data = model.SerializeToString()
    except ValueError:  # protobuf's 2 GiB limit
        raise ModelError(f"{model_path}: too large for a web page (over 2 GiB with its weights)") from None
    module, wasm = ort_web.runtime_files(tarball)
    method = f"{picture.weighting} weighting{', hierarchical' if picture.hierarchical else ''}, basis {picture.basis}"
    page = string.Template((PAGE / "index.html").read_text(encoding="utf-8")).substitute(
        title=html.escape(Path(model_path).name), model=html.escape(Path(model_path).name), picture=html.escape(picture.name),
        method=html.escape(method), neutral=f"{picture.neutral:.2f}", script=(PAGE / "pfv.js").read_text(encoding="utf-8"),
    )
    return {
        "index.html": page,
        "config.js": f"window.PFV_CONFIG = {_js(config)};\n",
        "resize.js": (PAGE / "resize.js").read_text(encoding="utf-8"),
        "ort.js": f"window.PFV_ORT_SOURCE = {_js(module)};\n",
        "ort-wasm.js": f'window.PFV_ORT_WASM = "{base64.b64encode(wasm).decode()}";\n',
        "model.js": f'window.PFV_MODEL = "{base64.b64encode(data).decode()}";\n',
        "samples.js": f"window.PFV_SAMPLES = {_js(photos)};\n",
        "NOTICE.txt": ort_web.NOTICE,
    }


def _config(featurizer: Featurizer, picture: PictureOutput) -> dict[str, Any]:
    """What the page needs to feed the model and read its picture."""
    spec, preset = featurizer.input, featurizer.preset
    if spec.channels != 3 or spec.dtype != np.float32:
        raise ModelError(f"the page feeds float32 RGB images; this model takes {spec.channels}-channel {spec.dtype} input")
    if tuple(featurizer.size) != picture.size:
        raise ModelError(f"the model's input is {featurizer.size}, its picture {picture.size}")
    logits = featurizer.logits_output
    shape = featurizer.session.output_shape(logits) if logits else None
    labels = featurizer.class_names_for(shape[1]) if shape and isinstance(shape[1], int) else None
    return {
        "input": spec.name, "layout": spec.layout, "size": list(picture.size), "batch": spec.batch or 1,
        "preset": {"mean": list(preset.mean), "std": list(preset.std), "bgr": preset.bgr},
        "resize": picture.resize, "background": "rgb({}, {}, {})".format(*BACKGROUND),
        "picture": {"name": picture.name, "layout": picture.layout},
        "logits": logits if labels else None, "labels": labels,
    }


def _sample(path: str) -> dict[str, str]:
    """A sample photo as the page embeds it; refused with one line when a browser cannot show it or it is
    not a readable image."""
    kind = MIME.get(Path(path).suffix.lower())
    if kind is None:
        raise ImageError(f"{path}: a browser shows {', '.join(sorted(MIME))} photos, not this one")
    data = read_file(path, MAX_SAMPLE_BYTES, "a sample photo")  # inlined in the page: a regular file, bounded
    load_image(path)  # decodes it under the same limits as every other input
    return {"name": Path(path).name, "type": kind, "data": base64.b64encode(data).decode()}


def _js(value: Any) -> str:
    """``value`` as a JavaScript literal that is safe inside a script file (no ``</script``)."""
    return json.dumps(value).replace("</", "<\\/")
