"""The bundled models on the bundled photos: predictions, contrasting colours, the randomisation check."""

from __future__ import annotations

import numpy as np
import onnx
from scipy.stats import spearmanr

from pfv_onnx import PFV
from pfv_onnx.images import bundled
from pfv_onnx.graph import reinitialise

CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
# Boxes (x0, y0, x1, y1) marked by hand on the 224 x 224 centre crops of the photos.
BOXES = {
    "dog": ("dog", (8, 104, 64, 200)),  # the dog sitting by the bicycle
    "small dog": ("person", (4, 150, 36, 182)),  # the dog at the person's feet
    "white horse": ("person", (172, 84, 216, 176)),  # the grazing horse
    "herd": ("horses", (8, 96, 200, 150)),  # the horses' bodies
}


def box_chromaticity(result, key):
    """Mean PFV colour inside a hand-marked box, as chromaticity ``rgb / (r + g + b)``.

    Brightness in a PFV picture is the activation; the hue is which features are there. Chromaticity
    compares the features and ignores how strongly the network responds.
    """
    name, (x0, y0, x1, y1) = BOXES[key]
    colour = result.rgb[result.names.index(name), y0:y1, x0:x1].reshape(-1, 3).mean(axis=0)
    return colour / colour.sum()


def test_bundled_mobilenet_predicts_the_photos(animals_result):
    top = dict(zip(animals_result.names, animals_result.top_k(3)))
    assert all(index in CATS for index, _, _ in top["chelsea"]), top["chelsea"]
    assert top["coffee"][0][1] == "espresso"
    assert top["chelsea"][0][1] in ("Egyptian cat", "tiger cat", "tabby, tabby cat")


def test_taps_of_mobilenet_are_one_per_stage():
    mobilenet = PFV("mobilenet_v2", weighting="paper")  # the paper's weighting reads every tap
    assert len(mobilenet.taps) == 4 and mobilenet.final.startswith("/features/features.18/")
    shapes = [(m.shape[1], m.shape[2]) for m in mobilenet.featurizer.forward(mobilenet.featurizer.load(bundled.sample_image("coffee")).inputs, maps=True).maps]
    assert shapes == [(112, 112), (56, 56), (28, 28), (14, 14)]


def test_two_dogs_share_a_colour_that_differs_from_the_horses(animals_result):
    dog, small_dog = box_chromaticity(animals_result, "dog"), box_chromaticity(animals_result, "small dog")
    horses = [box_chromaticity(animals_result, k) for k in ("white horse", "herd")]
    between_dogs = np.linalg.norm(dog - small_dog)
    dog_to_horse = min(np.linalg.norm(d - h) for d in (dog, small_dog) for h in horses)
    between_horses = np.linalg.norm(horses[0] - horses[1])
    # Measured: dogs 0.27 apart, dog to horse at least 0.55, horses 0.08 apart.
    assert between_dogs < 0.6 * dog_to_horse, (between_dogs, dog_to_horse)
    assert between_horses < 0.6 * dog_to_horse, (between_horses, dog_to_horse)


def test_runs_are_identical(mobilenet, animals, animals_result):
    again = mobilenet(animals)
    np.testing.assert_array_equal(again.rgb, animals_result.rgb)
    np.testing.assert_array_equal(again.activation, animals_result.activation)


def test_randomised_weights_give_different_maps(animals, animals_result):
    """Adebayo et al.'s sanity check. Threshold: the trained maps of two *different* photos already
    correlate (shared layout: borders, centre), so a randomised network passes when its maps are no closer
    to the trained maps of the same photos than that baseline plus 0.1, and clearly below 1."""
    model = reinitialise(onnx.load(str(bundled.model_path())), seed=0)
    randomised = PFV(model)(animals)
    trained = animals_result

    def rank_corr(a, b):
        return float(spearmanr(a.ravel(), b.ravel())[0])

    n = len(animals)
    same_photo = np.mean([rank_corr(trained.rgb[i], randomised.rgb[i]) for i in range(n)])
    other_photo = np.mean([rank_corr(trained.rgb[i], trained.rgb[(i + 1) % n]) for i in range(n)])
    activation = np.mean([rank_corr(trained.activation[i], randomised.activation[i]) for i in range(n)])
    assert same_photo < min(other_photo + 0.1, 0.5), (same_photo, other_photo)
    assert activation < 0.5, activation


def test_efficientnet_lite0(animals):
    pfv = PFV("efficientnet_lite0")
    assert pfv.options.preset == "lite" and pfv.taps == PFV("efficientnet_lite0", weighting="paper").taps[-1:]
    result = pfv(animals)
    top = dict(zip(result.names, result.top_k(5)))
    assert any(index in CATS for index, _, _ in top["chelsea"])
    assert top["coffee"][0][1] == "espresso"
    assert np.isfinite(result.rgb).all()


def test_result_arrays(animals_result):
    r = animals_result
    assert r.rgb.shape == (6, 224, 224, 3) and r.rgb.dtype == np.float32
    assert r.activation.shape == (6, 224, 224) and r.components.shape == (6, 224, 224, 3)
    assert r.images.shape == (6, 224, 224, 3) and r.images.dtype == np.uint8
    ratio = r.explained_variance_ratio
    assert ratio.shape == (3,) and (np.diff(ratio) <= 0).all() and 0 < ratio.sum() < 1
    assert r.logits.shape == (6, 1000)


def test_inputs_as_pil_and_uint8_arrays_match_paths(mobilenet, animals):
    from PIL import Image

    paths = animals[:2]
    as_pil = [Image.open(p) for p in paths]
    as_arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    a, b, c = mobilenet(paths), mobilenet(as_pil), mobilenet(as_arrays)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.rgb, c.rgb)
    folder = mobilenet(bundled.sample_images()[0].parent)
    assert folder.names == [p.stem for p in bundled.sample_images()]


def test_each_channel_sum_runs_right_after_its_tap(mobilenet):
    """The sums follow their taps in the graph's order (onnxruntime then runs them while the tap is in
    the cache), and every other node keeps its relative order."""
    tapped = mobilenet.featurizer.tapped.model
    nodes = list(tapped.graph.node)
    made_by = {out: i for i, node in enumerate(nodes) for out in node.output}
    for tap, name in zip(mobilenet.taps, mobilenet.featurizer.tapped.outputs.maps):
        between = nodes[made_by[tap] + 1 : made_by[name] + 1]
        assert between and all(node.name.startswith("pfv") for node in between), tap
    source = onnx.load(str(bundled.model_path()))
    own = [node.name for node in source.graph.node]
    assert [node.name for node in nodes if node.name in set(own)] == own


def test_chunks_change_the_speed_not_the_outputs(mobilenet, animals):
    """Forward passes in chunks of any size give the same numbers to the bit (so the default chunk, 8 on
    the CPU, is only a matter of speed)."""
    assert mobilenet.featurizer.chunk_size == 8
    x = mobilenet.featurizer.load(animals).inputs
    runs = [mobilenet.featurizer.session.run(x, chunk_size=size) for size in (None, 4, 1)]
    for name in runs[0]:
        assert all(np.array_equal(runs[0][name], other[name]) for other in runs[1:]), name


def test_a_light_models_lone_pass_spins_and_a_folder_runs_pass_does_not(animals, monkeypatch):
    """onnxruntime's threads spin in a light model's lone pass only: a folder run's pass (other threads
    decode and write beside it) is made on a session that does not spin, and so is a heavy model's every
    pass. The features are the same either way."""
    from pfv_onnx.runtime import featurizer as featurizer_module
    from pfv_onnx.runtime import session as session_module

    def spinning(featurizer) -> bool:
        config = featurizer.session._session.get_session_options().get_session_config_entry
        try:
            return config("session.intra_op.allow_spinning") != "0"
        except Exception:  # not set: onnxruntime's default, which spins
            return True

    light = featurizer_module.Featurizer("mobilenet_v2")
    x = light.load(animals).inputs
    lone = light.forward(x).final
    assert light.session.spin and spinning(light)
    alongside = light.forward(x, alongside=True).final
    assert not light.session.spin and not spinning(light)
    np.testing.assert_array_equal(lone, alongside)
    light.forward(x)
    assert light.session.spin  # back to the lone pass's session

    monkeypatch.setattr(session_module, "LIGHT_MODEL_BYTES", 1 << 20)  # MobileNetV2's 14 MB weights are heavy now
    heavy = featurizer_module.Featurizer("mobilenet_v2")
    first = heavy.session
    heavy.forward(x)
    heavy.forward(x, alongside=True)
    assert heavy.session is first and not spinning(heavy)


def test_a_folder_run_makes_its_session_once(tmp_path, monkeypatch):
    """explain with the focus weighting: its featureless image's pass, first asked for in a worker thread,
    runs on the session held; the run makes one session for its stream after the one PFV made."""
    from pfv_onnx.apps.explain import explain
    from pfv_onnx.runtime import session as session_module

    made = []

    class Counted(session_module.Session):
        def __init__(self, *args, **kwargs):
            made.append(kwargs.get("spin"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(session_module, "Session", Counted)
    pfv = PFV("mobilenet_v2")
    explain(pfv, bundled.sample_images()[:4], tmp_path / "out", batch=2, show_progress=False, pictures=["pfv"])
    assert made == [True, False] and not pfv.featurizer.session.spin
