"""Nothing a model or file says may steer what pfv-onnx reads or writes on disk."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from pfv_onnx import PFV, ModelError, export
from pfv_onnx.images import bundled
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


def test_external_weights_are_read_from_the_models_folder_not_the_current_one(tmp_path, monkeypatch):
    """``m.onnx`` + ``m.onnx.data`` opened from another folder: the linear head's weights come from the model's
    folder like every other weight. A ``m.onnx.data`` planted in the current folder with the head's weights
    negated changes nothing: not the head, not the classes the atlas names, not evaluate."""
    from pfv_onnx.cli import main

    model = onnx.load(str(bundled.model_path()))
    own = tmp_path / "own"
    own.mkdir()
    onnx.save(model, str(own / "m.onnx"), save_as_external_data=True, location="m.onnx.data")
    here = tmp_path / "here"
    here.mkdir()
    negated = onnx.load(str(bundled.model_path()))
    gemm = next(n for n in negated.graph.node if n.op_type == "Gemm")
    for init in negated.graph.initializer:
        if init.name in gemm.input[1:]:
            init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
    onnx.save(negated, str(here / "m.onnx"), save_as_external_data=True, location="m.onnx.data")
    (here / "m.onnx").unlink()  # only the planted weights stay in the current folder
    monkeypatch.chdir(here)

    head, expected = PFV(own / "m.onnx").featurizer.head, PFV().featurizer.head
    np.testing.assert_array_equal(head.weight, expected.weight)
    np.testing.assert_array_equal(head.bias, expected.bias)

    dataset = bundled.sample_images()[0].parent / "gcompris5"
    assert main(["inspect", str(own / "m.onnx")]) == 0
    assert main(["atlas", str(own / "m.onnx"), str(dataset), "--out", str(tmp_path / "atlas"), "--quiet", "--top", "2", "--components", "1"]) == 0
    assert main(["atlas", "mobilenet_v2", str(dataset), "--out", str(tmp_path / "reference"), "--quiet", "--top", "2", "--components", "1"]) == 0
    got, reference = (json.loads((tmp_path / name / "summary.json").read_text()) for name in ("atlas", "reference"))
    assert [s["classes_up"] for s in got["components"][0]["sides"]] == [s["classes_up"] for s in reference["components"][0]["sides"]]
    code = main(["evaluate", str(own / "m.onnx"), "--out", str(tmp_path / "evaluation"), "--count", "4", "--no-faithfulness", "--quiet"])
    assert code in (0, 1) and "CAM (top class)" in json.loads((tmp_path / "evaluation" / "summary.json").read_text())["maps"]
    assert sorted(p.name for p in here.iterdir()) == ["m.onnx.data"]
