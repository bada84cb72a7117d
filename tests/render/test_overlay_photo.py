"""The PFV picture over the photo at the photo's own resolution, where the model's crop came from."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pfv_onnx.images import bundled
from pfv_onnx.images.preprocess import crop_box, fit_image, load_image
from pfv_onnx.render import overlay_photo


def is_grey(pixels: np.ndarray) -> bool:
    return bool((pixels.max(axis=-1) == pixels.min(axis=-1)).all())


def test_the_picture_lies_where_the_crop_came_from():
    photo = np.asarray(load_image(bundled.sample_image("horses")))  # 773 x 512: the crop leaves both sides out
    height, width = photo.shape[:2]
    colours = np.zeros((224, 224, 3), np.float32)
    colours[:112, :112, 0] = 1.0  # the crop's top-left quarter red, the rest black
    out = overlay_photo(colours, photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    left, top, right, bottom = crop_box((width, height), (224, 224))
    assert 0 < left < right < width and 0 <= top < bottom <= height
    # The crop is what fit_image gives the model: the same box of the photo.
    np.testing.assert_array_equal(fit_image(Image.fromarray(photo), (224, 224)),
                                  np.asarray(Image.fromarray(photo).resize((224, 224), Image.Resampling.BILINEAR, box=(left, top, right, bottom))))
    x0, y0, x1, y1 = (round(v) for v in (left, top, right, bottom))
    assert is_grey(out[:, : x0 - 1]) and is_grey(out[:, x1 + 1 :])  # what the model did not see
    quarter = out[y0 + 5 : (y0 + y1) // 2 - 5, x0 + 5 : (x0 + x1) // 2 - 5].astype(int)
    rest = out[(y0 + y1) // 2 + 5 : y1 - 5, (x0 + x1) // 2 + 5 : x1 - 5].astype(int)
    assert (quarter[..., 0] > quarter[..., 1] + 50).all()  # red where the red quarter is
    assert is_grey(rest)  # black colours blend to grey


def test_stretch_covers_the_whole_photo_and_bad_arguments_are_one_line():
    photo = np.asarray(load_image(bundled.sample_image("horses")))
    colours = np.zeros((224, 224, 3), np.uint8)
    colours[..., 2] = 255
    out = overlay_photo(colours, photo, resize="stretch")
    assert crop_box((photo.shape[1], photo.shape[0]), (224, 224), "stretch") == (0.0, 0.0, photo.shape[1], photo.shape[0])
    assert (out[..., 2].astype(int) > out[..., 0].astype(int) + 50).all()  # blue everywhere
    for colours, image in [(colours, photo.astype(np.float32)), (colours[..., 0], photo)]:
        with pytest.raises(ValueError, match=r"overlay_photo\(colours, photo\) takes") as info:
            overlay_photo(colours, image)
        assert "\n" not in str(info.value)
