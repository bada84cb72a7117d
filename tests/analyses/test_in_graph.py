"""The fitted PFV inside the graph (pfv_onnx.analyses.in_graph): the exported model's picture against the NumPy
transform, on the bundled models, a model-zoo graph with a fixed batch, a Keras NHWC export and a float16
model, for every weighting."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from helpers import corpus, graphs
import numpy as np
import onnx
import pytest
from helpers.basis import write_basis
from helpers.graphs import half_precision
from helpers.cli import run_cli
from onnx import TensorProto

from pfv_onnx import PFV, export
from pfv_onnx.images import bundled
from pfv_onnx.cli import main
from pfv_onnx.errors import ModelError, PFVError
from pfv_onnx.graph import read_tapped_outputs, reinitialise
from pfv_onnx.analyses.in_graph import OUTPUTS_KEY, PICTURE_KEY, add_picture, read_picture_output
from pfv_onnx.render.images import to_uint8
from pfv_onnx.runtime import Session

PHOTOS = bundled.sample_images()
ZOO = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
# "Within 1/255 on every pixel": the float picture in levels of 255, and the uint8 picture in levels.
LEVEL = 1.0


def exported_picture(model, tmp_path: Path, uint8: bool = False, export_options: dict | None = None, **options):
    """Fit a basis on the sample photos, export ``model`` with it, and return the exported model, its
    outputs, its picture of the photos (run by onnxruntime) and the NumPy transform's."""
    pfv = PFV(model, **options).fit(PHOTOS)
    basis = pfv.save_basis(tmp_path / "basis.npz")
    dst = tmp_path / "model.pfv.onnx"
    outputs = export(model, dst, basis=basis, uint8=uint8, **(export_options or {}))
    inputs = pfv.featurizer.load(PHOTOS).inputs
    picture = Session(onnx.load(str(dst))).run(inputs, [outputs.picture])[outputs.picture]
    return onnx.load(str(dst)), outputs, picture, pfv.transform(PHOTOS).rgb


def assert_same_picture(picture: np.ndarray, rgb: np.ndarray, uint8: bool = False) -> None:
    if uint8:
        assert picture.dtype == np.uint8 and picture.shape == rgb.shape
        assert np.abs(picture.astype(int) - to_uint8(rgb).astype(int)).max() <= LEVEL
    else:
        assert picture.dtype == np.float32 and picture.shape == (rgb.shape[0], 3, *rgb.shape[1:3])
        assert np.abs(picture.transpose(0, 2, 3, 1) - rgb).max() * 255 <= LEVEL
        assert picture.min() >= 0 and picture.max() <= 1
    assert rgb.std() > 0.05  # a picture with something in it


@pytest.mark.parametrize(
    "options",
    [{}, {"weighting": "paper"}, {"weighting": "final"}, {"weighting": "paper", "hierarchical": True}, {"n_components": 2}],
    ids=["focus", "paper", "final", "hierarchical", "two-components"],
)
def test_mobilenet_v2_picture_equals_the_numpy_transform(tmp_path, options):
    model, outputs, picture, rgb = exported_picture("mobilenet_v2", tmp_path, **options)
    assert_same_picture(picture, rgb)
    if options.get("n_components") == 2:
        assert not picture[:, 2].any()  # the missing third component is black, as in the NumPy picture
    record = read_picture_output(model)
    assert record is not None and record.name == outputs.picture == "pfv_rgb" and record.layout == "NCHW"
    assert record.weighting == options.get("weighting", "focus") and record.size == (224, 224)


def test_uint8_picture_and_original_outputs_unchanged(tmp_path):
    model, outputs, picture, rgb = exported_picture("mobilenet_v2", tmp_path, uint8=True)
    assert_same_picture(picture, rgb, uint8=True)
    # The model's own output is the bundled model's, and what it was called.
    original = onnx.load(str(bundled.model_path()))
    assert outputs.original == tuple(o.name for o in original.graph.output)
    inputs = PFV("mobilenet_v2").featurizer.load(PHOTOS[:3]).inputs
    want = Session(original).run(inputs)
    got = Session(model).run(inputs, list(want))
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-5, atol=1e-5)
    # The metadata says what every output is.
    described = json.loads(next(p.value for p in model.metadata_props if p.key == OUTPUTS_KEY))
    assert set(described) == {o.name for o in model.graph.output}
    assert "unchanged" in described[outputs.original[0]] and "uint8" in described[outputs.picture]
    assert all(o.doc_string for o in model.graph.output)
    assert read_tapped_outputs(model).picture == outputs.picture


def test_efficientnet_lite0_picture(tmp_path):
    _, _, picture, rgb = exported_picture("efficientnet_lite0", tmp_path)
    assert_same_picture(picture, rgb)


def test_fixed_batch_model_zoo_graph(tmp_path):
    """ResNet-50 of the onnx model zoo (opset 9, batch fixed at 1), random weights: it runs one image at a
    time, and the NumPy transform the whole batch at once."""
    model = reinitialise(onnx.load(str(ZOO / "light_resnet50.onnx")))
    assert model.opset_import[0].version == 9 and model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    _, _, picture, rgb = exported_picture(model, tmp_path, preset="imagenet")
    assert_same_picture(picture, rgb)


def test_keras_nhwc_export(tmp_path):
    model = corpus.load("keras_mobilenet_v2")
    assert model.graph.input[0].type.tensor_type.shape.dim[3].dim_value == 3  # channels last
    _, _, picture, rgb = exported_picture(model, tmp_path, preset="raw", size=(96, 96))  # the export takes both from the basis
    assert_same_picture(picture, rgb)


def test_float16_model(tmp_path):
    model = half_precision(onnx.load(str(bundled.model_path())))
    exported, outputs, picture, rgb = exported_picture(model, tmp_path, preset="imagenet")
    assert_same_picture(picture, rgb)
    final = next(o for o in exported.graph.output if o.name == outputs.final)
    assert final.type.tensor_type.elem_type == TensorProto.FLOAT16


def test_a_basis_of_another_model_is_refused_and_nothing_written(tmp_path):
    basis = PFV("efficientnet_lite0").fit(PHOTOS[:4]).save_basis(tmp_path / "lite.npz")
    done = run_cli("export", "mobilenet_v2", str(tmp_path / "m.onnx"), "--basis", str(basis))
    assert done.returncode == 2 and "fitted on another model" in done.stderr and len(done.stderr.splitlines()) == 1
    done = run_cli("export", "mobilenet_v2", str(tmp_path / "m.onnx"), "--uint8")
    assert done.returncode == 2 and "give --basis" in done.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_command_line_export_with_a_basis(tmp_path, basis_file):
    basis = basis_file
    dst = tmp_path / "m.pfv.onnx"
    done = run_cli("export", "mobilenet_v2", str(dst), "--basis", str(basis), "--uint8")
    assert done.returncode == 0, done.stderr
    assert "pfv_rgb" in done.stdout and "uint8" in done.stdout
    record = read_picture_output(onnx.load(str(dst)))
    assert record.layout == "NHWC" and record.dtype == "uint8"
    shown = run_cli("inspect", str(dst))
    assert shown.returncode == 0 and "PFV picture output: pfv_rgb, (B, H, W, 3) uint8, focus weighting" in shown.stdout


def test_damaged_picture_metadata_is_refused(tmp_path, basis_file):
    model = onnx.load(str(bundled.model_path()))
    model.metadata_props.add(key=PICTURE_KEY, value="{}")
    with pytest.raises(ModelError, match="the model outputs none"):
        read_picture_output(model)
    basis = basis_file
    export("mobilenet_v2", tmp_path / "m.onnx", basis=basis)
    exported = onnx.load(str(tmp_path / "m.onnx"))
    record = next(p for p in exported.metadata_props if p.key == PICTURE_KEY)
    written = json.loads(record.value)
    for change in ({"size": [10**6, 10**6]}, {"resize": "../x"}, {"hierarchical": "no"}, {"size": ["224", "224"]}, {"weighting": "x"}):
        record.value = json.dumps({**written, **change})
        with pytest.raises(ModelError, match="unreadable"):
            read_picture_output(exported)
    for text in ("{", "[" * 200_000 + "]" * 200_000):  # cut short; nested deeper than a parser follows
        record.value = text
        with pytest.raises(ModelError, match="unreadable"):
            read_picture_output(exported)
    # A record that says another type or shape than the output: the float (B, 3, H, W) picture read as uint8
    # (B, H, W, 3), or at another size.
    for change in ({"layout": "NHWC"}, {"size": [112, 448]}):
        record.value = json.dumps({**written, **change})
        with pytest.raises(ModelError, match=r"metadata says its picture is .* but output 'pfv_rgb' is float \(\?, 3, 224, 224\)"):
            read_picture_output(exported)


def test_a_tapped_model_or_a_basis_that_does_not_fit_is_refused(tmp_path):
    pfv = PFV("mobilenet_v2").fit(PHOTOS[:4])
    basis = pfv.save_basis(tmp_path / "b.npz")
    export("mobilenet_v2", tmp_path / "tapped.onnx")
    with pytest.raises(ModelError, match="tapped already"):
        export(tmp_path / "tapped.onnx", tmp_path / "m.onnx", basis=basis)
    featurizer = pfv.featurizer
    narrow = replace(pfv.basis, layer_peaks=pfv.basis.layer_peaks[:1])
    with pytest.raises(ModelError, match="weights 1 layers"):
        add_picture(featurizer.tapped.model, featurizer.tapped.outputs, narrow, featurizer.blank, featurizer.size)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda h, a: a["scalars"].__setitem__(1, 1e300), "prescale 1e+300 is beyond float32's range"),
        (lambda h, a: a["mean"].__setitem__(0, 1e39), "mean 1e+39 is beyond float32's range"),
        (lambda h, a: a["layer_peaks"].__setitem__(0, 1e-310), "layer peak 1 1e-310 is below float32's smallest normal number"),
        (lambda h, a: a["scalars"].__setitem__(5, 1e39), "clip hi 1e+39 is beyond float32's range"),
        (lambda h, a: a["scalars"].__setitem__(3, 1e-40), "normalisation spread 1e-40 is below float32's smallest normal number"),
        # Every value a float32, but their projection is not.
        (lambda h, a: a["mean"].__setitem__(slice(None), 1e38), "projection of the mean"),
    ],
    ids=["prescale", "mean", "layer-peak", "clip", "spread", "projection"],
)
def test_a_basis_float32_cannot_hold_is_refused_as_it_is_read(tmp_path, capsys, basis_file, change, message):
    """Finite float64 values that overflow float32 (or divide by a denormal) drew NaN or black pictures, in
    the exported graph and in Python alike; the basis's features hash is its model's, so only the values
    can be refused."""
    damaged = write_basis(tmp_path / "damaged.npz", basis_file, change)
    dst = tmp_path / "m.pfv.onnx"
    assert main(["export", "mobilenet_v2", str(dst), "--basis", str(damaged)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.npz"]
    with pytest.raises(PFVError, match=re.escape(message)):
        PFV(basis=damaged)


def test_a_basis_of_other_channels_is_refused_where_the_model_leaves_them_open(tmp_path, capsys):
    """F_N is an output whose channel count the graph leaves open and only a run shows (16): a basis of 8
    channels with the model's features hash was exported unchecked, into a file onnxruntime refuses."""
    model = tmp_path / "open.onnx"
    onnx.save(graphs.final_channels_unknown()[0], str(model))
    pfv = PFV(model, preset="imagenet").fit(PHOTOS[:2])
    assert pfv.featurizer.final_shape is None  # the case this graph exists for: only a run shows the 16 channels
    basis = pfv.save_basis(tmp_path / "basis.npz")
    narrow = write_basis(tmp_path / "narrow.npz", basis, lambda h, a: (h.update(channels=8), a.update(mean=a["mean"][:8], components=a["components"][:, :8])))
    dst = tmp_path / "m.pfv.onnx"
    assert main(["export", str(model), str(dst), "--basis", str(narrow)]) == 2
    err = capsys.readouterr().err
    assert f"{narrow}: the basis has 8 channels, this model's F_N ({pfv.final}) has 16" in err and len(err.splitlines()) == 1, err
    assert not dst.exists()
    with pytest.raises(PFVError, match="the basis has 8 channels"):
        PFV(model, preset="imagenet", basis=narrow)
    # The basis it was fitted with exports a model that onnxruntime runs.
    outputs = export(model, dst, basis=basis)
    picture = Session(onnx.load(str(dst))).run(pfv.featurizer.load(PHOTOS[:2]).inputs, [outputs.picture])[outputs.picture]
    assert picture.shape == (2, 3, 32, 32) and np.isfinite(picture).all()


@pytest.mark.parametrize("name", ["timm_deit_distilled", "timm_swin"])
@pytest.mark.parametrize("weighting", ["focus", "paper"])
def test_a_transformer_picture_equals_the_numpy_transform(tmp_path, name, weighting):
    """The token grid (prefix tokens cut off, or a channels-last map laid NCHW) inside the exported graph."""
    source = tmp_path / f"{name}.onnx"
    onnx.save(corpus.load(name), str(source))
    model, outputs, picture, rgb = exported_picture(source, tmp_path, export_options={"preset": "imagenet"}, preset="imagenet", weighting=weighting)
    assert_same_picture(picture, rgb)
    assert outputs.final == "pfv_token_grid" and outputs.taps == ()
