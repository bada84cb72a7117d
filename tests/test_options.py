"""One options object: validated once, and the same in config(), describe(), the basis file and sanity;
PFV's verbs with scikit-learn's meanings, on every kind of input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from pfv_onnx import PFV, OptionError, Options
from pfv_onnx.images import bundled
from pfv_onnx.apps import sanity as sanity_app
from pfv_onnx.analyses.basis.file import load_basis
from pfv_onnx.cli import build_parser, main, options_from
from pfv_onnx.core import activation, decomposition
from pfv_onnx.options import SOLVERS, WEIGHTINGS


def test_numpy_values_are_accepted_and_normalised():
    options = Options(n_components=np.int64(4), size=(np.int32(64), 48), hierarchical=np.bool_(True), n_sigma=np.float32(2), layers=["a", "b"])
    assert (options.n_components, options.size, options.hierarchical, options.n_sigma, options.layers) == (4, (64, 48), True, 2.0, ("a", "b"))
    assert type(options.n_components) is int and type(options.hierarchical) is bool
    assert Options.from_dict(options.view()) == options


@pytest.mark.parametrize(
    "option, value",
    [("n_components", 0), ("n_components", 2.5), ("n_components", True), ("hierarchical", "false"), ("n_sigma", 0.0),
     ("n_sigma", 1e-300), ("n_sigma", float("nan")), ("solver", "magic"), ("resize", "squash"), ("preset", "nope"), ("size", (224,)),
     ("size", (0, 224)), ("chunk_size", 0), ("threads", -1), ("layers", [""]), ("final", 3), ("providers", 5)],
)
def test_every_bad_value_is_refused_with_one_line_naming_the_option(option, value):
    with pytest.raises(OptionError) as info:
        Options(**{option: value})
    assert info.value.option == option and str(info.value).startswith(option) and "\n" not in str(info.value)


def test_unknown_options_are_refused():
    with pytest.raises(OptionError, match="n_component is not an option"):
        Options().replace(n_component=3)


def test_the_command_line_flags_are_the_options_fields():
    args = build_parser().parse_args(["explain", "m.onnx", "x.jpg", "--out", "o", "--components", "5", "--hierarchical",
                                      "--layers", "a,b", "--size", "64", "48", "--provider", "CPU", "--chunk", "4", "--preset", "lite"])
    options = options_from(args)
    assert options == Options(n_components=5, hierarchical=True, layers=("a", "b"), size=(64, 48), providers=("CPU",), chunk_size=4, preset="lite")
    assert options_from(build_parser().parse_args(["explain", "m.onnx", "x.jpg", "--out", "o"])) == Options()
    flagged = {f.name for f in dataclasses.fields(Options) if f.metadata["flag"]}
    # What stays inside the graph is the runtime's choice by provider: Python only.
    assert flagged == {f.name for f in dataclasses.fields(Options)} - {"activation_in_graph", "statistics_in_graph"}


def test_a_bad_flag_value_names_the_flag(tmp_path, capsys):
    assert main(["explain", "mobilenet_v2", str(bundled.sample_images()[0]), "--out", str(tmp_path / "o"), "--n-sigma", "1e-300"]) == 2
    assert capsys.readouterr().err.strip() == "pfv-onnx: error: --n-sigma must be a number of at least 0.1, got 1e-300"
    assert not (tmp_path / "o").exists()


def test_the_options_offer_every_solver_and_weighting_the_core_has():
    assert set(SOLVERS) == set(decomposition.SOLVERS)
    assert WEIGHTINGS == tuple(activation.EARLIER_TAPS)  # the core's weightings; the first is the default
    assert Options().weighting == "focus" and Options(hierarchical=True).weighting == "paper"
    assert Options(weighting="final").replace(hierarchical=False).weighting == "final"  # kept
    assert Options(weighting="final").replace(hierarchical=True).weighting == "paper"
    assert Options(hierarchical=True).weighted("focus") == Options(weighting="focus")
    with pytest.raises(OptionError, match="must be paper for the hierarchical"):
        Options(hierarchical=True, weighting="focus")


@pytest.fixture(scope="module")
def hierarchical_basis(tmp_path_factory):
    """A basis fitted with other method options than the defaults: 2 components, hierarchical, clip 2."""
    path = tmp_path_factory.mktemp("basis") / "basis.npz"
    PFV(n_components=2, hierarchical=True, n_sigma=2.0).fit(bundled.sample_images()[:4]).save_basis(path)
    return path


def test_the_options_agree_everywhere_after_a_basis_is_used(hierarchical_basis, tmp_path):
    pfv = PFV(basis=hierarchical_basis)
    method = {"n_components": 2, "hierarchical": True, "n_sigma": 2.0}
    assert {k: getattr(pfv.options, k) for k in method} == method
    config = pfv._config()
    assert {k: config[k] for k in method} == method
    assert {k: pfv.describe()["options"][k] for k in method} == method
    header = pfv._basis_header(pfv.basis)
    assert {k: header[k] for k in method} == method
    assert Options.from_dict({k: v for k, v in config.items() if k != "model"}) == pfv.options
    pfv.save_basis(tmp_path / "again.npz")
    _, saved = load_basis(tmp_path / "again.npz")
    assert {k: saved[k] for k in method} == method


def test_sanity_with_a_basis_randomises_the_same_method(hierarchical_basis, tmp_path, monkeypatch):
    opened: list[Options] = []

    class Recording(PFV):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self.options)

    monkeypatch.setattr(sanity_app, "PFV", Recording)
    photos = [str(p) for p in bundled.sample_images()[:3]]
    assert main(["sanity", "mobilenet_v2", *photos, "--out", str(tmp_path / "s"), "--steps", "2", "--basis", str(hierarchical_basis), "--quiet"]) in (0, 1)
    assert len(opened) == 4  # the trained model's PFV, two cascade steps, all layers at once
    for options in opened:
        assert (options.n_components, options.hierarchical, options.n_sigma) == (2, True, 2.0)


@pytest.fixture(scope="module")
def photos():
    paths = bundled.sample_images()[:4]
    return paths, [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def test_fit_transform_and_fit_transform_take_arrays(photos):
    paths, arrays = photos
    by_path = PFV().fit(paths)
    by_array = PFV().fit(arrays)
    np.testing.assert_allclose(by_array.basis.pca.components, by_path.basis.pca.components, atol=1e-8)
    np.testing.assert_array_equal(by_array.transform(arrays).rgb, by_path.transform(paths).rgb)
    batch = by_path.featurizer.load(paths).inputs  # a preprocessed float batch
    np.testing.assert_allclose(PFV().fit(batch).basis.pca.components, by_path.basis.pca.components, atol=1e-8)
    np.testing.assert_array_equal(by_path.transform(batch).rgb, by_path.transform(paths).rgb)
    both = PFV().fit_transform(arrays)  # fits on the images, then colours them with that fit
    np.testing.assert_allclose(both.rgb, by_path.transform(paths).rgb, atol=1e-5)
    assert both.visualisation.basis is not None


def test_calling_is_relative_and_transform_needs_a_fit(photos):
    paths, arrays = photos
    pfv = PFV()
    with pytest.raises(Exception, match="no fitted basis"):
        pfv.transform(paths)
    relative = pfv(arrays)
    pfv.fit(bundled.sample_images())
    assert relative.visualisation.basis is None and pfv(arrays).visualisation.basis is None
    np.testing.assert_array_equal(pfv(arrays).rgb, relative.rgb)  # calling stays the paper's method
    assert pfv.transform(arrays).visualisation.basis is pfv.basis
