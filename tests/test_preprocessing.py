import numpy as np
import pytest

from amfl.preprocessing import centred_padding, pad, padded_size, prepare_images, scale_to_unit


def test_padding_centres_and_crops_back():
    padding = centred_padding((94, 93), (128, 128))
    assert (padding.top, padding.bottom, padding.left, padding.right) == (17, 17, 17, 18)
    image = np.arange(94 * 93).reshape(94, 93)
    np.testing.assert_array_equal(padding.crop(pad(image, padding, 0)), image)


def test_padding_to_a_smaller_size_is_refused():
    with pytest.raises(ValueError, match="cannot pad an image of 130 x 20 pixels to the smaller 128 x 128"):
        centred_padding((130, 20), (128, 128))


@pytest.mark.parametrize(("size", "expected"), [(1, 16), (16, 16), (17, 32), (94, 96), (500, 512)])
def test_padded_size_is_the_next_multiple_of_16(size, expected):
    assert padded_size(size) == expected


def test_scaling_is_per_image_and_clips_negative_rims():
    images = np.array([[[0, 100], [-5, 400]], [[0, 0], [0, 0]]], dtype=np.int16)
    scaled = scale_to_unit(images)
    np.testing.assert_allclose(scaled[0], [[0, 0.25], [0, 1]])
    np.testing.assert_array_equal(scaled[1], 0)


def test_prepare_images_defaults_to_the_next_multiple_of_16():
    prepared, padding = prepare_images(np.ones((50, 33)))
    assert prepared.shape == (64, 48)
    assert padding.crop(prepared).shape == (50, 33)
