"""Models from strangers: files that are not models, odd graphs, weights that live elsewhere, sizes and loops
they ask for; each gets its defined outcome or one clear line and exit code 2, and nothing a model says steers
what pfv-onnx reads or writes on disk."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from pfv_onnx import PFV, ModelError, PFVError, export, tap_model
from pfv_onnx.cli import main
from pfv_onnx.graph import (
    add_outputs,
    load_model,
    reinitialise,
    weights_folder,
    with_weights,
)
from pfv_onnx.images import bundled
from pfv_onnx.runtime import Session
from pfv_onnx.util import memory
from PIL import Image

from helpers import graphs
from helpers.cli import assert_one_line_error, one_line, run_cli

PHOTOS = [str(p) for p in bundled.sample_images()[:3]]


@pytest.fixture
def not_models(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    noise = tmp_path / "noise.onnx"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(bundled.model_path().read_bytes()[:100_000])
    return {"text": text, "noise": noise, "empty": empty, "truncated": truncated, "missing": tmp_path / "missing.onnx"}


@pytest.mark.parametrize("kind", ["text", "noise", "empty", "truncated", "missing"])
def test_not_a_model(not_models, kind):
    with pytest.raises(ModelError) as info:
        PFV(not_models[kind])
    assert str(not_models[kind]) in str(info.value) and "\n" not in str(info.value)


def test_cli_not_a_model_exits_2(not_models, tmp_path):
    assert_one_line_error(run_cli("export", str(not_models["text"]), str(tmp_path / "out.onnx")), 2, "not an ONNX model")
    assert not (tmp_path / "out.onnx").exists()


def test_cli_unknown_layer_exits_2(tmp_path):
    proc = run_cli("export", "mobilenet_v2", str(tmp_path / "t.onnx"), "--final", "no/such/tensor")
    assert_one_line_error(proc, 2, "no tensor named 'no/such/tensor'")


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


def test_model_with_external_weights(tmp_path):
    original = onnx.load(str(bundled.model_path()))
    folder = tmp_path / "external"
    folder.mkdir()
    path = folder / "model.onnx"
    onnx.save(original, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="weights.bin")
    assert path.stat().st_size < 200_000  # the weights are beside it
    photos = bundled.sample_images()[:3]
    a, b = PFV(path)(photos), PFV()(photos)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    exported = tmp_path / "tapped.onnx"
    export(path, exported)
    assert (tmp_path / "tapped.onnx.data").stat().st_size > 10_000_000
    np.testing.assert_allclose(PFV(exported)(photos).rgb, b.rgb, atol=1e-5)
    (folder / "weights.bin").unlink()
    with pytest.raises(ModelError, match="weights.bin"):
        PFV(path)


def test_quantised_qdq_model(tmp_path):
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    pfv = PFV()
    x = pfv.featurizer.load(bundled.sample_images()[:4]).inputs

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{"image": x[i : i + 1]} for i in range(len(x))])

        def get_next(self):
            return next(self.items, None)

    path = tmp_path / "qdq.onnx"
    quantize_static(str(bundled.model_path()), str(path), Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    quantised = PFV(path, weighting="paper")  # every tap
    assert len(quantised.taps) == 4 and all(t.endswith("DequantizeLinear_Output") for t in quantised.taps)
    # The taps are summed from their 8-bit tensors (onnxruntime's fused quantised convolutions never make the
    # float ones), and the sums are the float channel sums.
    added = [n for n in quantised.featurizer.tapped.model.graph.node if n.name.startswith("pfv_map")]
    assert sum(n.op_type == "ConvInteger" for n in added) == 4 and not any(n.op_type == "Conv" for n in added)
    features = quantised.featurizer.forward(x, maps=True)
    floats = Session(add_outputs(onnx.load(str(path)), quantised.taps)).run(x, quantised.taps)
    for tap, summed in zip(quantised.taps, features.maps):
        np.testing.assert_allclose(summed, floats[tap].sum(axis=1), rtol=1e-5, atol=1e-4 * np.abs(summed).max())
    result = quantised(bundled.sample_images())
    assert np.isfinite(result.rgb).all()
    top = dict(zip(result.names, result.top_k(1)))
    assert top["coffee"][0][1] == "espresso"


def test_open_input_size(tmp_path):
    model, taps, final = graphs.dynamic_size()
    default = PFV(model)
    assert default.size == (224, 224)
    assert default(np.zeros((2, 3, 224, 224), np.float32) + np.random.default_rng(0).random((2, 3, 224, 224), np.float32)).rgb.shape == (2, 224, 224, 3)
    small = PFV(model, size=(64, 48))
    assert small(bundled.sample_images()[:2]).rgb.shape == (2, 64, 48, 3)
    assert export(model, tmp_path / "open.onnx").activation is None
    assert export(model, tmp_path / "fixed.onnx", size=(64, 64)).activation == "pfv_activation"
    fixed, _, _ = graphs.vgg_like()
    with pytest.raises(ModelError, match="cannot take"):
        PFV(fixed, size=(64, 64))


def test_control_flow_in_the_head():
    model, taps, final = graphs.control_flow_head()
    tapped = tap_model(model)
    assert list(tapped.outputs.taps) == taps and tapped.outputs.final == final
    x = np.random.default_rng(0).random((3, 3, 32, 32), np.float32)

    original = Session(model).run(x)
    np.testing.assert_allclose(Session(tapped.model).run(x, list(original))[model.graph.output[0].name], original[model.graph.output[0].name], rtol=1e-6)
    assert "If" not in {n.op_type for n in tap_model(model, keep_logits=False).model.graph.node}
    assert np.isfinite(PFV(model)(x).rgb).all()


def test_one_pixel_final_layer(tmp_path):
    model, taps, _ = graphs.resnet_like()
    pooled = next(n.output[0] for n in model.graph.node if n.op_type == "GlobalAveragePool")
    pfv = PFV(model, final=pooled)
    x = np.random.default_rng(0).random((4, 3, 32, 32), np.float32)
    with pytest.raises(PFVError, match="gives 2 pixel\\(s\\) for this batch .* fewer than the 3 components"):
        pfv(x[:2])
    result = pfv(x)  # four images: four pixels, enough for three components
    assert np.isfinite(result.rgb).all()


def test_constant_features_give_grey_not_nan():
    model, _, _ = graphs.zero_weights()
    result = PFV(model)(np.random.default_rng(0).random((3, 3, 32, 32), np.float32))
    assert np.isfinite(result.rgb).all() and np.all(result.rgb == 0.5)
    assert np.all(result.explained_variance_ratio == 0)


def resized_input(model: onnx.ModelProto, dims: list[int | str]) -> onnx.ModelProto:
    for axis, value in enumerate(dims):
        dim = model.graph.input[0].type.tensor_type.shape.dim[axis]
        dim.Clear()
        if isinstance(value, int):
            dim.dim_value = value
        else:
            dim.dim_param = value
    return model


def test_sizes_a_model_or_option_asks_for_are_checked_first(tmp_path, monkeypatch):
    huge = resized_input(graphs.dynamic_size()[0], ["N", 3, "H", "W"])
    with pytest.raises(ModelError, match="100000 x 100000 pixels is over the limit"):
        PFV(huge, size=(100000, 100000))
    batch = resized_input(graphs.vgg_like()[0], [1_000_000_000, 3, 32, 32])
    onnx.save(batch, str(tmp_path / "batch.onnx"))
    proc = run_cli("explain", str(tmp_path / "batch.onnx"), PHOTOS[0], "--out", str(tmp_path / "o"), timeout=120)
    assert proc.returncode == 2 and "the model's fixed batch of 1000000000 images needs about" in one_line(proc.stderr)
    pfv = PFV()
    monkeypatch.setattr(memory, "available_bytes", lambda: 50 * 2**20)
    with pytest.raises(PFVError, match="a batch of 100 images at 224 x 224 needs about"):
        pfv([PHOTOS[0]] * 100)
    monkeypatch.undo()
    result = pfv(PHOTOS * 2)
    monkeypatch.setattr(memory, "available_bytes", lambda: 2**20)
    with pytest.raises(PFVError, match="the 3 components of 6 images at 224 x 224 needs about"):
        result.components


def test_many_components_are_drawn_from_the_first_three(tmp_path):
    out = tmp_path / "o"
    assert main(["explain", "mobilenet_v2", *PHOTOS, "--out", str(out), "--components", "100", "--quiet"]) == 0
    assert json.loads((out / "summary.json").read_text())["options"]["n_components"] == 100
    assert np.asarray(Image.open(out / "images" / f"{Path(PHOTOS[0]).stem}_components.png")).std() > 5


def test_tapped_metadata_naming_the_wrong_outputs_is_refused(tmp_path):
    export("mobilenet_v2", tmp_path / "tapped.onnx")
    model = onnx.load(str(tmp_path / "tapped.onnx"))
    entry = next(p for p in model.metadata_props if p.key == "pfv_onnx")
    recorded = json.loads(entry.value)
    entry.value = json.dumps({**recorded, "final": "logits"})  # a (B, 1000) output read as F_N
    onnx.save(model, str(tmp_path / "two_d.onnx"))
    with pytest.raises(ModelError, match="'logits', read as F_N, has shape \\[2, 1000\\]"):
        PFV(tmp_path / "two_d.onnx")(PHOTOS[:2])
    entry.value = json.dumps({**recorded, "final": "no_such_output"})
    onnx.save(model, str(tmp_path / "missing.onnx"))
    with pytest.raises(ModelError, match="not one of its outputs"):
        PFV(tmp_path / "missing.onnx")
    entry.value = "[" * 200_000 + "]" * 200_000  # deeper than Python's json follows
    onnx.save(model, str(tmp_path / "deep.onnx"))
    proc = run_cli("inspect", str(tmp_path / "deep.onnx"), timeout=60)
    assert proc.returncode == 2 and "metadata is unreadable" in one_line(proc.stderr)


def test_sanity_randomises_layers_whose_nodes_have_no_names(tmp_path):
    model = onnx.load(str(bundled.model_path()))
    for node in model.graph.node:
        node.name = ""
    onnx.save(model, str(tmp_path / "unnamed.onnx"))
    out = tmp_path / "s"
    main(["sanity", str(tmp_path / "unnamed.onnx"), *PHOTOS[:2], "--out", str(out), "--steps", "2", "--quiet"])
    cascade = json.loads((out / "summary.json").read_text())["cascade"]
    assert cascade[0]["randomised"] == 1 and cascade[0]["spearman"] == pytest.approx(1.0)  # only the classifier
    assert cascade[0]["from_layer"] == "Gemm #53"


def loop_model(path: Path) -> Path:
    """A small CNN whose head runs a Loop of a trillion steps."""
    from onnx import TensorProto, helper, numpy_helper

    net = graphs.Net()
    features = net.conv(net.maxpool(net.conv("image", 3, 8)), 8, 16, stride=2)
    logits = net.op("MatMul", [net.op("Flatten", [net.op("GlobalAveragePool", [features])], axis=1), net.const(np.ones((16, 5), np.float32))])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)],
    )
    net.inits += [numpy_helper.from_array(np.array(10**12, np.int64), "trips"), numpy_helper.from_array(np.array(True), "go")]
    net.nodes.append(helper.make_node("Loop", ["trips", "go", logits], ["scores"], body=body))
    onnx.save(net.model([graphs.image()], [graphs.output("scores", ["N", 5])], opset=17), str(path))
    return path


def test_ctrl_c_stops_a_forward_pass_that_never_ends(tmp_path):
    model = loop_model(tmp_path / "loop.onnx")
    # Ctrl-C as a terminal sends it, even where the suite itself runs with SIGINT ignored (a background job).
    proc = subprocess.Popen([sys.executable, "-m", "pfv_onnx", "explain", str(model), PHOTOS[0], "--out", str(tmp_path / "o"), "--preset", "imagenet"],
                            stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    journal = tmp_path / "o" / ".pfv-run.jsonl"
    deadline = time.monotonic() + 60
    while not journal.exists() and time.monotonic() < deadline:  # the run has started: the forward pass comes next
        time.sleep(0.2)
    time.sleep(2)  # running the Loop
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)  # the kernel may deliver it to any of the process's threads
    stopped = time.monotonic()
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()  # never left running for the tests after it
    assert proc.returncode == 130 and time.monotonic() - stopped < 10
    assert one_line(err) == "pfv-onnx: interrupted: run the same command again to resume"


def test_weights_the_identity_must_see(tmp_path):
    """Weights in sparse initializers and in the model's own functions are part of what a basis binds to."""
    from onnx import helper, numpy_helper
    from pfv_onnx.graph import features_sha256

    def sparse_model(scale: float) -> onnx.ModelProto:
        model, taps, final = graphs.vgg_like()
        first = next(n for n in model.graph.node if n.op_type == "Conv")
        weight = next(t for t in model.graph.initializer if t.name == first.input[1])
        values = numpy_helper.to_array(weight).ravel() * scale
        model.graph.initializer.remove(weight)
        indices = numpy_helper.from_array(np.arange(values.size, dtype=np.int64), "sparse_indices")
        model.graph.sparse_initializer.append(helper.make_sparse_tensor(numpy_helper.from_array(values, weight.name), indices, list(weight.dims)))
        return model, [*taps, final]

    (a, tensors), (b, _) = sparse_model(1.0), sparse_model(2.0)
    assert features_sha256(a, None, tensors) != features_sha256(b, None, tensors)

    def function_model(value: float) -> onnx.ModelProto:
        body = [helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array(value, np.float32))),
                helper.make_node("Mul", ["x", "k"], ["y"])]
        scale = helper.make_function("local", "Scale", ["x"], ["y"], body, [helper.make_opsetid("", 17)])
        net = graphs.Net()
        features = net.conv(net.maxpool(net.conv("image", 3, 8)), 8, 8, stride=2)
        net.nodes.append(helper.make_node("Scale", [features], ["scaled"], domain="local"))
        pooled = net.op("GlobalAveragePool", ["scaled"])
        model = helper.make_model(
            helper.make_graph(net.nodes, "f", [graphs.image()], [graphs.output(pooled, ["N", 8, 1, 1])], net.inits),
            opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1)], functions=[scale],
        )
        return model, ["scaled"]

    (a, tensors), (b, _) = function_model(1.0), function_model(3.0)
    assert features_sha256(a, None, tensors) != features_sha256(b, None, tensors)


def test_export_checks_the_input_size_too(tmp_path):
    huge = resized_input(graphs.dynamic_size()[0], ["N", 3, "H", "W"])
    with pytest.raises(ModelError, match="over the limit"):
        export(huge, tmp_path / "huge.onnx", size=(50000, 50000))
    assert not (tmp_path / "huge.onnx").exists()


def test_a_transformer_with_a_scalar_and_an_attention_laid_out_n_b_c(tmp_path, capsys):
    """The token rule probes the norms and sums whose shapes inference cannot tell: a scalar among them, and a
    ``(N, B, C)`` tensor, are shapes no rule reads (the scalar ended in an IndexError, exit 3), and the tokens
    are found beside them."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    floats = {"W": rng.normal(size=(16, 3, 8, 8)) * 0.1, "g": np.ones(16), "b": np.zeros(16), "Wh": rng.normal(size=(16, 10)), "one": np.array(1.0)}
    ints = {"s3": np.array([0, 16, -1]), "zero": np.array([0]), "token_axis": np.array([1]), "swap": np.array([1, 0, 2])}
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["patches"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Reshape", ["patches", "s3"], ["flat"]),
        helper.make_node("Transpose", ["flat"], ["tokens"], perm=[0, 2, 1]),
        helper.make_node("LayerNormalization", ["tokens", "g", "b"], ["normed"], axis=-1),
        # axes computed at run time (an empty list: every axis), so inference cannot tell the sum's rank
        helper.make_node("Shape", ["normed"], ["shape"]),
        helper.make_node("Slice", ["shape", "zero", "zero"], ["no_axes"]),
        helper.make_node("ReduceSum", ["normed", "no_axes"], ["everything"], keepdims=0),
        helper.make_node("Add", ["everything", "one"], ["scalar"]),
        helper.make_node("Transpose", ["normed"], ["sequence_first"], perm=[1, 0, 2]),
        helper.make_node("Gather", ["shape", "swap"], ["shape_n_b_c"]),
        helper.make_node("Reshape", ["sequence_first", "shape_n_b_c"], ["unknown_layout"]),
        helper.make_node("Add", ["unknown_layout", "unknown_layout"], ["doubled"]),  # (N, B, C), its shape known only by a run
        helper.make_node("ReduceMean", ["doubled", "token_axis"], ["ignored"], keepdims=0),
        helper.make_node("ReduceMean", ["normed", "token_axis"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "Wh"], ["scores"]),
        helper.make_node("Add", ["scores", "scalar"], ["logits"]),
    ]
    initializers = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in floats.items()]
    initializers += [numpy_helper.from_array(v.astype(np.int64), k) for k, v in ints.items()]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 32, 32])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    tapped = tap_model(model)
    assert tapped.tokens is not None and tapped.tokens.tokens == "normed" and (tapped.tokens.height, tapped.tokens.width) == (4, 4)
    onnx.save(model, str(tmp_path / "model.onnx"))
    assert main(["inspect", str(tmp_path / "model.onnx"), "--preset", "imagenet"]) == 0
    assert "token grid: 4 x 4 patches" in capsys.readouterr().out
