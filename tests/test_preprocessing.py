"""amfl.preprocessing: padding, scaling and the Preprocessor saved with a model, which
training and inference share."""

import json

import numpy as np
import pytest
import torch

import amfl.hub
from amfl.data.pairs import OverlapPairs
from amfl.data.protocol import model_arrays
from amfl.models import create_model
from amfl.preprocessing import (
    PREPROCESSOR_FILE,
    Preprocessor,
    border_median,
    centred_padding,
    pad,
    padded_size,
    scale_to_unit,
)
from amfl.segmentation import Segmenter
from conftest import example_arrays, make_pairs


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


def test_border_median_is_the_median_of_the_outermost_pixels():
    image = np.full((5, 6), 7.0)
    image[1:-1, 1:-1] = 1000  # the inside does not count
    image[0, :3] = 9  # 3 of the 20 border pixels (corners counted twice: 22 values)
    assert border_median(image) == 7
    assert border_median(np.stack([image, image + 1])).tolist() == [7, 8]


# --- Preprocessor: sizes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "settings", "expected"),
    [
        ((94, 93), {}, (128, 128)),  # the paper's protocol: at least the training size
        ((50, 33), {}, (128, 128)),
        ((130, 200), {}, (144, 208)),  # larger: the next multiples of 16
        ((50, 33), {"minimum_size": 1}, (64, 48)),
        ((50, 33), {"minimum_size": 1, "size_divisor": 32}, (64, 64)),
    ],
)
def test_network_size_is_the_minimum_size_or_the_next_multiple_of_the_divisor(shape, settings, expected):
    preprocessor = Preprocessor(**settings)
    prepared = preprocessor.prepare(np.ones((1, *shape), np.float32))
    assert preprocessor.network_size(shape) == expected
    assert prepared.images.shape == (1, *expected)
    assert prepared.padding.crop(prepared.images).shape == (1, *shape)


def test_a_94_by_93_sample_is_padded_17_17_17_18():
    prepared = Preprocessor().prepare(np.ones((94, 93), np.float32))
    assert (prepared.padding.top, prepared.padding.bottom, prepared.padding.left, prepared.padding.right) == (
        17, 17, 17, 18,
    )


# --- Preprocessor: values ---------------------------------------------------------------------


def test_dark_background_offset_is_removed_by_value():
    image = np.full((20, 20), 100.0, np.float32)
    image[5:15, 5:15] = 400
    foreground, inverted = Preprocessor().foreground(image)
    assert not inverted
    expected = np.zeros((20, 20), np.float32)
    expected[5:15, 5:15] = 300
    np.testing.assert_array_equal(foreground, expected)


def test_light_background_is_inverted_by_value():
    dark, _ = example_arrays(1)  # a real crop: background 0, chromosomes up to 186
    light = 255 - dark.astype(np.float32)
    foreground, inverted = Preprocessor().foreground(light)
    assert inverted
    np.testing.assert_array_equal(foreground, dark.astype(np.float32))
    never, inverted = Preprocessor(polarity="dark_background").foreground(light)
    assert not inverted
    np.testing.assert_array_equal(never, np.clip(light - 255, 0, None))  # all background, 0


def test_inversion_is_decided_per_image_of_a_batch():
    dark, _ = example_arrays(2)
    batch = np.stack([dark, 1000 - dark]).astype(np.float32)
    prepared = Preprocessor().prepare(batch)
    assert prepared.inverted.tolist() == [False, True]
    np.testing.assert_array_equal(prepared.images[1], prepared.images[0])


def test_without_background_step_the_grey_is_kept():
    image = np.full((8, 8), 50.0, np.float32)
    image[2:6, 2:6] = 150
    foreground, _ = Preprocessor(background="none").foreground(image)
    np.testing.assert_array_equal(foreground, image)


def test_pad_value_255_shows_in_the_padded_border():
    image = np.zeros((94, 93), np.float32)
    image[40:60, 40:50] = 100
    prepared = Preprocessor(pad_value=255).prepare(image)
    padding = prepared.padding
    assert prepared.images[0, 0] == 1.0 and prepared.images[-1, -1] == 1.0  # 255 / max 255
    assert (prepared.images[:17] == 1.0).all() and (prepared.images[:, -18:] == 1.0).all()
    inside = padding.crop(prepared.images)
    np.testing.assert_allclose(inside, image / 255)
    default = Preprocessor().prepare(image)
    assert (default.images[:17] == 0).all() and default.images.max() == 1.0


def test_training_and_inference_prepare_a_sample_identically():
    pairs = make_pairs(3)
    preprocessor = Preprocessor(pad_value=40.0)
    images, labels = model_arrays(pairs, preprocessor)
    assert images.shape == (3, 1, 128, 128) and labels.shape == (3, 128, 128)
    for index in range(3):
        alone = preprocessor.prepare(pairs.images[index])
        np.testing.assert_array_equal(images[index, 0], alone.images)
        np.testing.assert_array_equal(alone.padding.crop(labels[index]), pairs.labels[index])
        assert labels[index].sum() == pairs.labels[index].sum()  # the padding is background


def test_training_and_inference_prepare_a_real_sample_identically():
    image, truth = example_arrays(3)
    preprocessor = Preprocessor()
    images, _ = model_arrays(OverlapPairs(image[None].astype(np.int16), truth[None]), preprocessor)
    np.testing.assert_array_equal(images[0, 0], preprocessor.prepare(image.astype(np.float32)).images)


# --- Preprocessor: settings and files ---------------------------------------------------------


def test_settings_survive_a_save_and_read(tmp_path):
    preprocessor = Preprocessor(
        background="none", polarity="dark_background", pad_value=255.0, minimum_size=64, size_divisor=32
    )
    path = preprocessor.save(tmp_path)
    assert path == tmp_path / PREPROCESSOR_FILE
    assert json.loads(path.read_text())["pad_value"] == 255.0
    assert Preprocessor.read(path) == preprocessor


def test_an_unknown_setting_is_refused_naming_it(tmp_path):
    path = tmp_path / PREPROCESSOR_FILE
    path.write_text(json.dumps({**Preprocessor().to_dict(), "gamma": 0.5}))
    with pytest.raises(ValueError, match=r"does not know: \['gamma'\]"):
        Preprocessor.read(path)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"background": "mean"}, "background must be one of"),
        ({"polarity": "light"}, "polarity must be one of"),
        ({"scaling": "percentile"}, "scaling must be one of"),
        ({"minimum_size": 0}, "minimum_size must be a whole number"),
        ({"size_divisor": 16.0}, "size_divisor must be a whole number"),
        ({"size_divisor": True}, "size_divisor must be a whole number"),
        ({"pad_value": float("nan")}, "pad_value must be a finite"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        Preprocessor(**settings)


def test_a_bad_file_names_itself(tmp_path):
    path = tmp_path / PREPROCESSOR_FILE
    path.write_text('{"background": "mean"}')
    with pytest.raises(ValueError, match=f"{PREPROCESSOR_FILE}: preprocessor background"):
        Preprocessor.read(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        Preprocessor.read(path)


def test_for_model_raises_the_divisor_to_the_models():
    assert Preprocessor.for_model(create_model("amfl-small", base_width=4)) == Preprocessor()
    bisenet = create_model("bisenetv1", base_width=8)
    assert bisenet.input_divisor == 32
    assert Preprocessor.for_model(bisenet).size_divisor == 32
    assert Preprocessor.for_model(bisenet, size_divisor=64, pad_value=3.0) == Preprocessor(
        size_divisor=64, pad_value=3.0
    )


@pytest.mark.parametrize("name", ["amfl-small", "bisenetv1"])
def test_a_model_saved_without_a_preprocessor_gets_the_one_it_was_trained_with(tmp_path, name):
    model = create_model(name, base_width=4 if name == "amfl-small" else 8)
    model.save_pretrained(tmp_path)
    assert not (tmp_path / PREPROCESSOR_FILE).exists()
    loaded = amfl.hub.load_preprocessor(tmp_path, amfl.hub.from_pretrained(tmp_path))
    assert loaded == Preprocessor.for_model(model)
    assert loaded.size_divisor == model.input_divisor


def test_a_saved_preprocessor_is_loaded_and_used_by_the_segmenter(tmp_path):
    torch.manual_seed(0)
    model = create_model("amfl-small", base_width=4)
    model.save_pretrained(tmp_path)
    saved = Preprocessor(pad_value=255.0, minimum_size=160)
    saved.save(tmp_path)
    assert amfl.hub.load_preprocessor(tmp_path, model) == saved
    segmenter = Segmenter.from_pretrained(tmp_path)
    assert segmenter.preprocessor == saved
    seen = []
    predict = segmenter.predict
    segmenter.predict = lambda batch: seen.append(batch) or predict(batch)
    result = segmenter.segment(np.zeros((94, 93), np.uint16))
    assert result.shape == (94, 93)
    assert seen[0].shape == (1, 1, 160, 160) and seen[0][0, 0, 0, 0].item() == 1.0  # the 255 border


def test_without_output_steps_turns_every_step_off_but_the_naming_and_keeps_the_input_side():
    every_step = Preprocessor(background="none", min_overlap_pixels=5, min_overlap_border_share=0.2,
                              min_overlap_brightness=1.0, min_part_share=0.35, cut_piece_share=0.5, naming="area")
    bare = every_step.without_output_steps()
    assert bare == Preprocessor(background="none", naming="area")
    assert every_step.without_output_steps(naming="network") == Preprocessor(background="none")
