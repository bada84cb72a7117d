"""``pfv-onnx web MODEL.pfv.onnx --out DIR``: a static page that runs a model exported with a basis in the
browser (onnxruntime-web) and draws the PFV picture of the photos a user drops on it.

The folder holds ``index.html`` and the scripts it loads: the page's config, the resize that matches
:func:`pfv_onnx.preprocess.fit_image` bit for bit, onnxruntime-web, the model and optional sample photos,
each inlined as a classic script. A page opened from ``file://`` may neither fetch files nor import modules,
so it works from the disk as well as from any static server, and fetches nothing when viewed.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import string
from importlib import resources
from pathlib import Path
from typing import Any

import onnx

from ..console import plural, say
from ..errors import ModelError, PFVError
from ..files import check_output_folder, output_folder, write_atomic
from ..graph import image_input, load_with_weights, read_tapped_outputs
from ..in_graph import PictureOutput, read_picture_output
from ..labels import METADATA_KEY as LABELS_KEY
from ..labels import resolve_labels
from ..options import Options
from ..preprocess import BACKGROUND, load_image
from ..presets import DEFAULT_PRESET, get_preset
from ..render import ort_web

PAGE = resources.files("pfv_onnx") / "render" / "webpage"
MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp", ".gif": "image/gif", ".bmp": "image/bmp"}


def run(args: argparse.Namespace, options: Options) -> int:
    out = check_output_folder(args.out, args.overwrite)
    files = page_files(args.model, options, args.samples or [], args.ort_web)
    out = output_folder(out, args.overwrite)
    for name, text in files.items():
        write_atomic(out / name, text)
    if not args.quiet:
        say(f"wrote {out / 'index.html'}: open it in a browser ({plural(len(args.samples or []), 'sample photo')} inside; drop more on it)")
    return 0


def page_files(model_path: str, options: Options, samples: list[str], tarball: str | None) -> dict[str, str]:
    """The page's files by name: everything is read and checked before anything is written."""
    model = load_with_weights(model_path)
    picture = read_picture_output(model)
    if picture is None:
        raise PFVError(f"{model_path}: has no PFV picture output; export it with a basis first (pfv-onnx export MODEL DST --basis B)")
    config = _config(model, picture, options)
    module, wasm = ort_web.runtime_files(tarball)
    photos = [_sample(path) for path in samples]
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
        "model.js": f'window.PFV_MODEL = "{base64.b64encode(model.SerializeToString()).decode()}";\n',
        "samples.js": f"window.PFV_SAMPLES = {_js(photos)};\n",
        "NOTICE.txt": ort_web.NOTICE,
    }


def _config(model: onnx.ModelProto, picture: PictureOutput, options: Options) -> dict[str, Any]:
    """What the page needs to feed the model and read its picture."""
    spec = image_input(model)
    if spec.channels != 3 or spec.dtype.name != "float32":
        raise ModelError(f"the page feeds float32 RGB images; this model takes {spec.channels}-channel {spec.dtype.name} input")
    if spec.size is not None and tuple(spec.size) != picture.size:
        raise ModelError(f"the model's input is {spec.size}, its picture {picture.size}")
    metadata = {p.key: p.value for p in model.metadata_props}
    preset = get_preset(options.preset or metadata.get("preset") or DEFAULT_PRESET)
    labels, _ = resolve_labels(None, options.labels, metadata.get(LABELS_KEY))
    tapped = read_tapped_outputs(model)
    logits = _logits(model, tapped.original if tapped else (), len(labels) if labels else None)
    return {
        "input": spec.name, "layout": spec.layout, "size": list(picture.size), "batch": spec.batch or 1,
        "preset": {"mean": list(preset.mean), "std": list(preset.std), "bgr": preset.bgr},
        "resize": options.resize, "background": "rgb({}, {}, {})".format(*BACKGROUND),
        "picture": {"name": picture.name, "layout": picture.layout},
        "logits": logits, "labels": labels if logits else None,
    }


def _logits(model: onnx.ModelProto, outputs, classes: int | None) -> str | None:
    """The first of the model's own outputs shaped ``(B, classes)``, whose top class the page names."""
    for value in model.graph.output:
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        if value.name in outputs and len(dims) == 2 and classes and dims[1] == classes:
            return value.name
    return None


def _sample(path: str) -> dict[str, str]:
    """A sample photo as the page embeds it; refused with one line when it is not a readable image."""
    load_image(path)  # decodes it under the same limits as every other input
    data = Path(path).read_bytes()
    return {"name": Path(path).name, "type": MIME.get(Path(path).suffix.lower(), "application/octet-stream"), "data": base64.b64encode(data).decode()}


def _js(value: Any) -> str:
    """``value`` as a JavaScript literal that is safe inside a script file (no ``</script``)."""
    return json.dumps(value).replace("</", "<\\/")
