"""Nothing a model or file says may steer what pfv-onnx reads or writes on disk."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from pfv_onnx import PFV, ModelError, bundled, export
from pfv_onnx.graph import load_model, reinitialise, weights_folder, with_weights


def first_weight(model: onnx.ModelProto) -> np.ndarray:
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    return numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == conv.input[1]))


def test_model_metadata_cannot_point_the_weights_elsewhere(tmp_path):
    """A model whose metadata names another folder for its external weights (the key earlier versions of
    pfv-onnx used internally) is read with the weights beside it; the other folder is never read: not by
    the session, not into an export, not by the loader the sanity check uses."""
    randomised = reinitialise(onnx.load(str(bundled.model_path())), seed=0)
    outside, own = tmp_path / "outside", tmp_path / "own"
    outside.mkdir()
    own.mkdir()
    external = {"save_as_external_data": True, "all_tensors_to_one_file": True, "location": "weights.bin"}
    onnx.save(onnx.load(str(bundled.model_path())), str(outside / "model.onnx"), **external)  # the trained weights
    onnx.save(reinitialise(onnx.load(str(bundled.model_path())), seed=0), str(own / "model.onnx"), **external)
    hostile = onnx.load(str(own / "model.onnx"), load_external_data=False)
    entry = hostile.metadata_props.add()
    entry.key, entry.value = "pfv_onnx.weights_dir", str(outside)
    path = own / "hostile.onnx"
    onnx.save(hostile, str(path))

    photos = bundled.sample_images()[:2]
    got = PFV(path)(photos).logits
    np.testing.assert_allclose(got, PFV(randomised)(photos).logits, rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, PFV()(photos).logits, atol=1e-2)

    export(path, tmp_path / "tapped.onnx")
    exported = onnx.load(str(tmp_path / "tapped.onnx"))
    np.testing.assert_array_equal(first_weight(exported), first_weight(randomised))

    loaded = load_model(path)
    np.testing.assert_array_equal(first_weight(with_weights(loaded, weights_folder(path, loaded))), first_weight(randomised))

    with pytest.raises(ModelError, match="open it by its path"):
        PFV(hostile)  # in memory, the model's folder is unknown: its metadata does not stand in for it
    (own / "weights.bin").unlink()
    with pytest.raises(ModelError, match="weights.bin"):
        PFV(path)
