"""Graph rewriting on synthetic graphs: the taps found, original outputs unchanged, PFV on a batch of 4."""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import pytest

from helpers import graphs
from pfv_onnx import PFV, LayerError, ModelError, PFVError, export, tap_model
from pfv_onnx.images import bundled
from pfv_onnx.core import total_activation
from pfv_onnx.graph import infer_tensors, shape_candidates
from pfv_onnx.graph.builder import bilinear_matrix
from pfv_onnx.runtime import Session

CASES = {
    "vgg_like": graphs.vgg_like,
    "resnet_like": graphs.resnet_like,
    "fixed_batch_reshape_head": graphs.fixed_batch_reshape_head,
    "nhwc_input": graphs.nhwc_input,
    "channels_last_mean_head": graphs.channels_last_mean_head,
    "old_ir_version": graphs.old_ir_version,
    "shapes_unknown_to_inference": graphs.shapes_unknown_to_inference,
    "squeeze_excitation": graphs.squeeze_excitation,
    "valid_convolutions": graphs.valid_convolutions,
    "final_is_an_output": graphs.final_is_an_output,
    "fixed_batch": graphs.fixed_batch,
}


def batch_for(model: onnx.ModelProto, n: int = 4, seed: int = 0) -> np.ndarray:
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return np.random.default_rng(seed).standard_normal((n, *dims[1:])).astype(np.float32)


@pytest.mark.parametrize("case", sorted(CASES))
def test_taps_outputs_and_pfv(case):
    model, expected_taps, expected_final = CASES[case]()
    tapped = tap_model(model)
    assert list(tapped.outputs.taps) == expected_taps
    assert tapped.outputs.final == expected_final

    x = batch_for(model)
    original = Session(model).run(x)
    rewritten = Session(tapped.model).run(x)
    for name, value in original.items():
        np.testing.assert_allclose(rewritten[name], value, rtol=1e-6, atol=1e-6)

    result = PFV(model, weighting="paper")(x)  # the paper's weighting reads every tap
    size = x.shape[1:3] if tapped.input.layout == "NHWC" else x.shape[2:]
    assert result.rgb.shape == (4, *size, 3)
    assert np.isfinite(result.rgb).all() and 0.0 <= result.rgb.min() and result.rgb.max() <= 1.0
    assert result.taps == expected_taps and result.final == expected_final


def test_probe_run_fills_in_what_shape_inference_cannot():
    model, _, _ = graphs.shapes_unknown_to_inference()
    tensors = infer_tensors(model)
    unknown = [name for name in shape_candidates(model) if not (name in tensors and tensors[name].known)]
    assert unknown  # the case this graph exists for
    assert tap_model(model).outputs.taps  # found through the probe run


@pytest.mark.parametrize("make, fixed, n", [(graphs.fixed_batch_reshape_head, 1, 3), (graphs.fixed_batch, 4, 6)])
def test_fixed_batch_runs_in_chunks_of_its_size(make, fixed, n):
    model, _, _ = make()
    pfv = PFV(model)
    assert pfv.featurizer.session.fixed_batch == fixed
    x = batch_for(model, n)
    features = pfv.featurizer.forward(x)  # 6 images with a fixed batch of 4: the second chunk is padded
    assert features.final.shape[0] == n and features.logits.shape[0] == n
    padded = np.concatenate([x, np.repeat(x[-1:], -n % fixed, axis=0)])
    direct = np.concatenate([Session(model).run(padded[i : i + fixed])[model.graph.output[0].name] for i in range(0, len(padded), fixed)])
    np.testing.assert_allclose(features.logits, direct[:n], rtol=1e-5, atol=1e-6)


def test_a_final_layer_that_is_also_an_output_is_read_once():
    model, _, final = graphs.final_is_an_output()
    x = batch_for(model, 2)
    result = PFV(model)(x)
    assert result.rgb.shape[0] == 2 and result.features.final.shape[0] == 2
    assert result.logits.shape == (2, 16)  # the (B, K, 1, 1) output reads as class scores; F_N itself never does


def test_float16_taps_are_summed_in_float32():
    model, taps, _ = graphs.float16()
    x = np.random.default_rng(0).random((2, 3, 32, 32)).astype(np.float16) + 1
    result = PFV(model, weighting="paper")(x)
    assert np.isfinite(result.activation).all() and result.activation.max() > 65504  # beyond float16
    assert np.isfinite(result.rgb).all()


def test_empty_and_bad_chunking_are_clear_errors():
    model, _, _ = graphs.vgg_like()
    with pytest.raises(PFVError, match="no images"):
        PFV(model)(np.zeros((0, 3, 32, 32), np.float32))
    with pytest.raises(PFVError, match="chunk_size"):
        PFV(model, chunk_size=0)
    with pytest.raises(PFVError, match="solver"):
        PFV(model, solver="magic")


def test_activation_in_graph_equals_numpy():
    model, _, _ = graphs.vgg_like()
    x = batch_for(model)
    tapped = tap_model(model, activation_in_graph=True)
    names = [tapped.outputs.activation, *tapped.outputs.maps]
    out = Session(tapped.model).run(x, names)
    expected = total_activation([out[m][:, 0] for m in tapped.outputs.maps], (32, 32))
    np.testing.assert_allclose(out[tapped.outputs.activation][:, 0], expected, rtol=1e-5, atol=1e-4)
    in_graph = PFV(model, activation_in_graph=True, weighting="paper")  # A^b is the paper's
    a = in_graph(x)
    b = PFV(model, activation_in_graph=False, weighting="paper")(x)
    np.testing.assert_allclose(a.rgb, b.rgb, atol=1e-5)
    # With A^b from the graph only F_N, A^b and the logits leave onnxruntime, unless the maps are needed.
    assert a.features.maps is None and len(in_graph.featurizer.forward(x, maps=True).maps) == len(tapped.outputs.maps)
    hierarchical = [PFV(model, activation_in_graph=flag, hierarchical=True) for flag in (True, False)]
    results = [h(x) for h in hierarchical]
    assert len(results[0].features.maps) == len(tapped.outputs.maps)
    np.testing.assert_allclose(results[0].rgb, results[1].rgb, atol=1e-5)
    with pytest.raises(PFVError, match="per-layer maps"):
        hierarchical[0]._colour(hierarchical[0].featurizer.forward(x, maps=False))
    # A fitted basis colours features without their maps the same as with them.
    basis = PFV(model, activation_in_graph=False, weighting="paper").fit([str(p) for p in bundled.sample_images()[:4]]).basis
    assert basis is not None and not basis.hierarchical
    without = in_graph._colour(in_graph.featurizer.forward(x), basis=basis)
    np.testing.assert_allclose(without.rgb, in_graph._colour(in_graph.featurizer.forward(x, maps=True), basis=basis).rgb, atol=1e-6)


@pytest.mark.parametrize("n_in, n_out", [(7, 224), (13, 32), (32, 13), (1, 5), (55, 224)])
def test_bilinear_matrix_matches_opencv(n_in, n_out):
    x = np.random.default_rng(0).standard_normal((n_in, n_in)).astype(np.float32)
    via_matrix = bilinear_matrix(n_in, n_out) @ x.astype(np.float64) @ bilinear_matrix(n_in, n_out).T
    np.testing.assert_allclose(via_matrix, cv2.resize(x, (n_out, n_out), interpolation=cv2.INTER_LINEAR), rtol=1e-5, atol=1e-5)


def test_export_writes_a_self_describing_model(tmp_path):
    model, taps, final = graphs.resnet_like()
    path = tmp_path / "tapped.onnx"
    outputs = export(model, path)
    saved = onnx.load(str(path))
    onnx.checker.check_model(saved, full_check=True)
    names = [o.name for o in saved.graph.output]
    assert names[0] == model.graph.output[0].name and final in names and outputs.activation in names and set(outputs.maps) <= set(names)
    shape = [d.dim_value or d.dim_param for d in saved.graph.output[names.index(outputs.activation)].type.tensor_type.shape.dim]
    assert shape == ["N", 1, 32, 32]
    # PFV reads the taps back from the file instead of tapping it again.
    pfv = PFV(path)
    assert pfv.taps == taps and pfv.final == final
    with pytest.raises(LayerError, match="tapped already"):
        tap_model(saved, layers=taps)


@pytest.mark.parametrize("make", [graphs.vgg_like, graphs.old_ir_version])
def test_without_logits_the_head_is_pruned(make):
    model, _, final = make()
    tapped = tap_model(model, keep_logits=False)
    onnx.checker.check_model(tapped.model)
    ops = {n.op_type for n in tapped.model.graph.node}
    assert "Gemm" not in ops and "Flatten" not in ops
    assert model.graph.output[0].name not in [o.name for o in tapped.model.graph.output]
    assert PFV(model, keep_logits=False)(batch_for(model)).logits is None


def test_named_layers_and_final():
    model, taps, final = graphs.vgg_like()
    only_final = tap_model(model, final=taps[1])
    assert list(only_final.outputs.taps) == taps[:1] and only_final.outputs.final == taps[1]
    named = tap_model(model, layers=[final, taps[0]])  # any order; the last in graph order is F_N
    assert list(named.outputs.taps) == [taps[0]] and named.outputs.final == final
    both = tap_model(model, layers=[taps[1]], final=final)
    assert list(both.outputs.taps) == [taps[1]]


def test_bad_layer_names_are_clear_errors():
    model, taps, final = graphs.vgg_like()
    with pytest.raises(LayerError, match="'image' is the model's input"):
        tap_model(model, final="image")
    with pytest.raises(LayerError, match="is a weight"):
        tap_model(model, final=model.graph.initializer[0].name)
    with pytest.raises(LayerError, match="comes after the final layer"):
        tap_model(model, layers=[final], final=taps[0])
    with pytest.raises(LayerError, match="no tensor named 'relu88'.*did you mean"):
        tap_model(model, final="relu88")
    with pytest.raises(LayerError, match="not a \\(batch, channels, height, width\\) feature map"):
        tap_model(model, final=model.graph.output[0].name)


def test_reinitialising_a_tapped_model_is_refused():
    from pfv_onnx.graph import reinitialise

    model, _, _ = graphs.vgg_like()
    with pytest.raises(ModelError, match="original model"):
        reinitialise(tap_model(model).model)


def test_a_graph_without_spatial_layers_is_refused():
    with pytest.raises(ModelError, match="no layer to tap"):
        tap_model(graphs.no_spatial_layer())


def test_io_binding_gives_the_same_outputs():
    """The path onnxruntime takes on an accelerator (I/O binding), checked on the CPU."""
    model, _, _ = graphs.fixed_batch(4)
    x = batch_for(model, 6)
    plain = Session(model).run(x)
    bound_session = Session(model, binding=True)
    assert bound_session.binding and not Session(model).binding
    for name, value in bound_session.run(x).items():
        np.testing.assert_array_equal(value, plain[name])
