"""Preprocessing: the crop, the presets, layouts and greyscale models."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pfv_onnx.images.preprocess import LUMA, PRESETS, fit_image, to_model_input


def test_crop_keeps_the_centre_at_the_evaluation_scale():
    # A 400 x 200 image whose left and right quarters are black: the 224 crop of the 256-high resize
    # (512 x 256) takes the middle 224 columns, all white.
    pixels = np.zeros((200, 400, 3), np.uint8)
    pixels[:, 100:300] = 255
    crop = fit_image(Image.fromarray(pixels), (224, 224), "crop")
    assert crop.shape == (224, 224, 3) and crop.min() == 255
    whole = fit_image(Image.fromarray(pixels), (224, 224), "stretch")
    assert whole[:, :40].max() == 0 and whole[:, 100:120].min() == 255


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets(name):
    preset = PRESETS[name]
    pixels = np.random.default_rng(0).integers(0, 256, (2, 4, 5, 3), dtype=np.uint8)
    nchw = to_model_input(pixels, preset, "NCHW", 3, np.dtype(np.float32))
    nhwc = to_model_input(pixels, preset, "NHWC", 3, np.dtype(np.float32))
    np.testing.assert_array_equal(nchw.transpose(0, 2, 3, 1), nhwc)
    assert nchw.flags.c_contiguous and nhwc.flags.c_contiguous  # what onnxruntime reads without a copy
    np.testing.assert_array_equal(to_model_input(pixels, preset, "NCHW", 3, np.dtype(np.float16)), nchw.astype(np.float16))
    expected = (pixels - np.array(preset.mean)) / np.array(preset.std)
    if preset.bgr:
        expected = expected[..., ::-1]
    np.testing.assert_allclose(nhwc, expected, rtol=1e-5, atol=1e-5)


def test_named_formulas():
    one = np.full((1, 1, 1, 3), 255, np.uint8)
    assert np.allclose(to_model_input(one, PRESETS["lite"], "NHWC", 3, np.dtype(np.float32)), 128 / 128)
    assert np.allclose(to_model_input(one, PRESETS["tf"], "NHWC", 3, np.dtype(np.float32)), 1.0)
    rgb = np.array([[[[10, 20, 30]]]], np.uint8)
    caffe = to_model_input(rgb, PRESETS["caffe"], "NHWC", 3, np.dtype(np.float32))[0, 0, 0]
    np.testing.assert_allclose(caffe, [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-5)  # B, G, R


def test_greyscale_models_get_luma():
    rgb = np.array([[[[200, 100, 50]]]], np.uint8)
    got = to_model_input(rgb, PRESETS["tf"], "NCHW", 1, np.dtype(np.float16))
    assert got.shape == (1, 1, 1, 1) and got.dtype == np.float16
    luma = float(np.dot([200, 100, 50], LUMA))
    assert abs(float(got[0, 0, 0, 0]) - (luma - 127.5) / 127.5) < 1e-3
