"""Benchmarks of pfv-onnx: PFV's cost over the bare forward pass of the same model (``python -m benchmarks``)."""
