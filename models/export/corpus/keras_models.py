"""Keras 3 models (random weights) exported to ONNX the two ways Keras users do: tf2onnx, and Keras's own
``model.export(format="onnx")``; and one of them after onnxslim. Run in an environment of its own:

    python3 -m venv /tmp/venv-tf && /tmp/venv-tf/bin/pip install tensorflow-cpu tf2onnx onnxslim
    /tmp/venv-tf/bin/python models/export/corpus/keras_models.py

(Seen working with tensorflow-cpu 2.21.0, Keras 3.15.1, tf2onnx 1.17.0, onnxslim 0.1.98.) Keras
applications take raw 0-255 pixels and normalise inside the model (pfv-onnx's ``raw`` preset); they are
channels-last (NHWC) and pad explicitly before strided convolutions (ZeroPadding2D).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import onnx  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _strip import save  # noqa: E402

OPSET = 17
MODELS = {
    # name: (constructor, input size)
    "keras_mobilenet_v2": (lambda size: keras.applications.MobileNetV2(input_shape=(size, size, 3), alpha=0.35, weights=None), 96),
    "keras_efficientnet_b0": (lambda size: keras.applications.EfficientNetB0(input_shape=(size, size, 3), weights=None), 64),
    "keras_resnet50": (lambda size: keras.applications.ResNet50(input_shape=(size, size, 3), weights=None), 64),
    "keras_densenet121": (lambda size: keras.applications.DenseNet121(input_shape=(size, size, 3), weights=None), 64),
}


def via_tf2onnx(model: keras.Model, size: int) -> onnx.ModelProto:
    spec = (tf.TensorSpec((None, size, size, 3), tf.float32, name="image"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    return proto


def via_keras_export(model: keras.Model, size: int) -> onnx.ModelProto:
    model(tf.zeros((1, size, size, 3)))  # Keras exports only a model that has been called
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "model.onnx"
        model.export(str(path), format="onnx")
        return onnx.load(str(path))


def main() -> None:
    versions = f"tensorflow {tf.__version__}, keras {keras.__version__}, tf2onnx {tf2onnx.__version__}"
    keras.utils.set_random_seed(0)
    for name, (build, size) in MODELS.items():
        save(via_tf2onnx(build(size), size), name, f"keras.applications, random weights, {size} px, tf2onnx opset {OPSET} ({versions})")
    mobilenet = MODELS["keras_mobilenet_v2"][0](96)
    save(via_keras_export(mobilenet, 96), "keras_mobilenet_v2_export", f"keras.applications.MobileNetV2, model.export(format='onnx') ({versions})")

    import onnxslim

    slimmed = onnxslim.slim(via_tf2onnx(mobilenet, 96))
    save(slimmed, "keras_mobilenet_v2_slim", f"keras_mobilenet_v2 through onnxslim {onnxslim.__version__} ({versions})")


if __name__ == "__main__":
    main()
