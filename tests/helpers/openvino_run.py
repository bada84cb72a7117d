"""Run in the OpenVINO environment (``pip install -e '.[openvino]'``) by tests/test_openvino.py: the exported
model through onnxruntime's OpenVINO execution provider and through OpenVINO's own runtime, and pfv-onnx
itself on the OpenVINO provider, with a basis and relative to the batch; the pictures go to an .npz file.

    python openvino_run.py MODEL.pfv.onnx PICTURE_OUTPUT INPUTS.npy BASIS.npz OUT.npz PHOTO...
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime
import openvino

from pfv_onnx import PFV


def main(model: str, picture: str, inputs: str, basis: str, out: str, *photos: str) -> None:
    x = np.load(inputs)
    session = onnxruntime.InferenceSession(model, providers=["OpenVINOExecutionProvider"])
    assert session.get_providers()[0] == "OpenVINOExecutionProvider", session.get_providers()
    provider = session.run([picture], {session.get_inputs()[0].name: x})[0]
    core = openvino.Core()
    # OpenVINO's CPU plugin computes in bfloat16 by default on CPUs that have AMX: ask for float32.
    compiled = core.compile_model(core.read_model(model), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    runtime = compiled({0: x})[compiled.output(picture)]
    pfv = PFV("mobilenet_v2", providers=["OpenVINO"], basis=basis)
    assert pfv.featurizer.session.providers[0] == "OpenVINOExecutionProvider"
    # Colours relative to the batch with F_N's statistics in the graph and F_N projected on the provider.
    relative = PFV("mobilenet_v2", providers=["OpenVINO"], statistics_in_graph=True)(list(photos))
    assert not relative.features.final_fetched
    np.savez(out, provider=provider, runtime=runtime, pfv=pfv.transform(list(photos)).rgb, relative=relative.rgb)


if __name__ == "__main__":
    main(*sys.argv[1:])
