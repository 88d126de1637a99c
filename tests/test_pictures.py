"""amfl.pictures: the paper's class colours, overlays, difference images and PNG files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from amfl.pictures import (
    CLASS_COLOURS,
    colour_labels,
    difference_image,
    overlay,
    save_label_png,
    save_png,
    stretch_to_uint8,
)
from amfl.reading import read_ground_truth
from conftest import example_arrays

_, LABELS = example_arrays(1)
BLACK, RED, GREEN, BLUE, WHITE = (0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def test_class_colours_are_the_papers():
    assert CLASS_COLOURS == (BLACK, RED, GREEN, BLUE)
    pixels = colour_labels(np.array([[0, 1, 2, 3, 4]], np.uint8))
    assert pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[0], [BLACK, RED, GREEN, BLUE, WHITE])  # 4: raw data only


def test_stretch_maps_min_to_0_and_max_to_255():
    np.testing.assert_array_equal(stretch_to_uint8(np.array([[100.0, 150.0, 300.0]])), [[0, 64, 255]])
    np.testing.assert_array_equal(stretch_to_uint8(np.full((2, 2), 7.0)), np.zeros((2, 2)))
    assert stretch_to_uint8(np.array([[-1.0, 1.0]])).dtype == np.uint8


def test_overlay_blends_paper_colours_over_chromosomes_only():
    display = np.full((1, 4), 100, np.uint8)
    labels = np.array([[0, 1, 2, 3]], np.uint8)
    np.testing.assert_array_equal(overlay(display, labels, 1.0)[0], [[100] * 3, RED, GREEN, BLUE])
    np.testing.assert_array_equal(overlay(display, labels, 0.0)[0], [[100] * 3] * 4)
    np.testing.assert_array_equal(
        overlay(display, labels, 0.5)[0], [[100] * 3, (178, 50, 50), (50, 178, 50), (50, 50, 178)]
    )
    with pytest.raises(ValueError, match="opacity must lie in 0..1, got 1.5"):
        overlay(display, labels, 1.5)


def test_difference_image_highlights_wrong_pixels_in_the_predicted_colour():
    truth = np.array([[0, 1, 1, 3, 2, 0]], np.uint8)
    pred = np.array([[0, 1, 0, 2, 2, 3]], np.uint8)
    np.testing.assert_array_equal(
        difference_image(pred, truth)[0],
        [
            BLACK,  # correct background
            (64, 64, 64),  # correct chromosome
            WHITE,  # missed: predicted background
            GREEN,  # overlap predicted as chromosome 2
            (64, 64, 64),
            BLUE,  # background predicted as overlap
        ],
    )


def test_label_png_is_an_index_map_in_paper_colours(tmp_path):
    path = save_label_png(LABELS, tmp_path / "labels.png")
    assert path == tmp_path / "labels.png"
    with Image.open(path) as image:
        assert image.mode == "P"
        np.testing.assert_array_equal(np.asarray(image), LABELS)
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), colour_labels(LABELS))
    np.testing.assert_array_equal(read_ground_truth(path, LABELS.shape), LABELS)


def test_save_png_writes_the_pixels(tmp_path):
    pixels = colour_labels(LABELS)
    path = save_png(pixels, tmp_path / "colours.png")
    with Image.open(path) as image:
        np.testing.assert_array_equal(np.asarray(image), pixels)
