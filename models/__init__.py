"""The bundled ONNX models and their labels, installed as the data package ``pfv_onnx.models``."""
