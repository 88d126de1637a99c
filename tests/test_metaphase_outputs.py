"""amfl.metaphase_outputs: the overlay, the gallery, the CSV rows, the summary line and the
files of one metaphase, on a MetaphaseResult built here by hand (no model), so that every
mask, length and flag is known."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw

from amfl.metaphase import Chromosome, MetaphaseObject, MetaphaseResult, SetAside
from amfl.metaphase_outputs import (
    CHROMOSOME_COLUMNS,
    COLOUR_OPACITY,
    METAPHASE_SUFFIXES,
    REVIEW_OUTLINE,
    SET_ASIDE_COLUMNS,
    SET_ASIDE_OUTLINE,
    chromosome_colour,
    chromosome_rows,
    gallery_picture,
    metaphase_row,
    overlay_picture,
    read_instance_layers,
    save_metaphase_outputs,
    set_aside_rows,
    summary_line,
    upright_cutout,
)

SHAPE = (120, 160)
#: Chromosome id -> (row, column) ends of a bar 7 px thick, its grey level and the skeleton
#: length the result claims (chosen apart from the drawn size, so the gallery's order can only
#: come from ``length``). 3 and 4 cross: a pair the model separated; 5 is flagged for review.
BARS = {
    1: (((10, 20), (40, 20)), 60, 31.0),
    2: (((10, 50), (50, 50)), 120, 75.0),
    3: (((60, 20), (100, 60)), 180, 52.0),
    4: (((60, 60), (100, 20)), 240, 48.0),
    5: (((15, 90), (45, 120)), 90, 64.0),
}
NUCLEUS_CENTRE, NUCLEUS_RADIUS = (85, 125), 18
SPECK = (110, 150)


def bar(ends, shape=SHAPE) -> np.ndarray:
    (r0, c0), (r1, c1) = ends
    layer = np.zeros(shape, np.uint8)
    cv2.line(layer, (c0, r0), (c1, r1), 1, 7)
    return layer.astype(bool)


def in_box(mask: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray]:
    rows, columns = np.nonzero(mask)
    box = (int(rows.min()), int(columns.min()), int(rows.max()) + 1, int(columns.max()) + 1)
    return box, mask[box[0] : box[2], box[1] : box[3]].copy()


def chromosome(number: int, mask: np.ndarray, length: float, **flags) -> Chromosome:
    box, inside = in_box(mask)
    values = {"separated_by_model": False, "review": False, "reason": "", "partner": None, **flags}
    return Chromosome(number, 3 if number == 4 else number, box, inside, int(inside.sum()), length, **values)


def build(bars=BARS, set_aside: bool = True) -> tuple[np.ndarray, MetaphaseResult]:
    """A uint16 metaphase (grey levels x 100) and its result, as analyse_metaphase would give."""
    grey = np.full(SHAPE, 5.0, np.float32)
    chromosomes = []
    pair = "overlapping pair separated by the model"
    flags = {3: dict(separated_by_model=True, partner=4, reason=pair), 4: dict(separated_by_model=True, partner=3, reason=pair),
             5: dict(review=True, reason="cluster of about 2 chromosomes, split by shape")}
    for number, (ends, level, length) in bars.items():
        mask = bar(ends)
        grey[mask] = np.maximum(grey[mask], level)
        chromosomes.append(chromosome(number, mask, length, **flags.get(number, {})))
    kept = []
    if set_aside:
        disc = np.zeros(SHAPE, np.uint8)
        cv2.circle(disc, NUCLEUS_CENTRE[::-1], NUCLEUS_RADIUS, 1, -1)
        speck = np.zeros(SHAPE, bool)
        speck[SPECK[0] - 1 : SPECK[0] + 2, SPECK[1] - 1 : SPECK[1] + 2] = True
        grey[disc > 0], grey[speck] = 70, 200
        for number, (kind, mask) in enumerate([("nucleus", disc > 0), ("debris", speck)], start=10):
            box, inside = in_box(mask)
            kept.append(SetAside(number, box, int(inside.sum()), kind, f"a {kind}", inside))
    objects = [MetaphaseObject(c.object_id, c.box, c.area, "single", 1, (c.id,)) for c in chromosomes if c.id not in (3, 4)]
    result = MetaphaseResult(SHAPE, chromosomes, objects, kept, 7.0, 50.0, 0.25, 1, ())
    return (grey * 100).astype(np.uint16), result


@pytest.fixture(scope="module")
def built():
    return build()


def display(grey: np.ndarray) -> np.ndarray:
    return np.round((grey - grey.min()) * 255.0 / (grey.max() - grey.min())).astype(np.uint8)


def test_overlay_tints_each_chromosome_in_its_colour_and_leaves_the_background_grey(built):
    grey, result = built
    picture = overlay_picture(grey, result)
    assert picture.shape == (*SHAPE, 3) and picture.dtype == np.uint8
    shown = display(grey)
    for number, (row, column) in {1: (13, 20), 2: (13, 50)}.items():  # near an end: no id drawn there
        expected = (1 - COLOUR_OPACITY) * shown[row, column] + COLOUR_OPACITY * np.array(chromosome_colour(number))
        np.testing.assert_allclose(picture[row, column], expected, atol=1)
    assert tuple(picture[5, 5]) == (shown[5, 5],) * 3
    crossing = picture[80, 40].astype(float)  # the overlap of 3 and 4: the mean of their colours
    expected = (1 - COLOUR_OPACITY) * shown[80, 40] + COLOUR_OPACITY * (np.add(chromosome_colour(3), chromosome_colour(4)) / 2)
    np.testing.assert_allclose(crossing, expected, atol=1)


def test_each_id_is_drawn_on_its_chromosome_and_a_pairs_apart(built, monkeypatch):
    grey, result = built
    drawn = overlay_picture(grey, result)
    calls = []
    monkeypatch.setattr(ImageDraw.ImageDraw, "text", lambda self, xy, text, **kwargs: calls.append((xy, text)))
    undrawn = overlay_picture(grey, result)
    assert [text for _, text in calls] == ["1", "2", "3", "4", "5*"]
    first, overlap = result.instance_layers()
    for c, ((column, row), _) in zip(result.chromosomes, calls, strict=True):
        assert result.full_mask(c)[row, column] and not overlap[row, column], f"id {c.id} is not on its own pixels"
        near = np.s_[row - 4 : row + 5, column - 4 : column + 5]
        assert np.any(drawn[near] != undrawn[near], axis=-1).sum() >= 10, f"no id drawn on chromosome {c.id}"
    (column_3, row_3), (column_4, row_4) = calls[2][0], calls[3][0]
    assert np.hypot(column_3 - column_4, row_3 - row_4) >= 15  # the crossing pair's ids do not cover each other


def test_review_flags_and_set_aside_objects_are_outlined(built):
    grey, result = built
    picture = overlay_picture(grey, result)
    flagged = result.full_mask(result.chromosomes[4])
    edge = flagged & ~cv2.erode(flagged.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))).astype(bool)
    assert (picture[edge] == REVIEW_OUTLINE).all(axis=-1).mean() > 0.7  # the id's text covers a few
    unflagged = result.full_mask(result.chromosomes[1])
    assert not (picture[unflagged] == REVIEW_OUTLINE).all(axis=-1).any()
    nucleus = result.set_aside[0]
    row = nucleus.box[0]  # the top row of the disc: all edge
    assert any(tuple(picture[row, column]) == SET_ASIDE_OUTLINE for column in range(nucleus.box[1], nucleus.box[3]))
    assert tuple(picture[NUCLEUS_CENTRE]) == (display(grey)[NUCLEUS_CENTRE],) * 3  # not tinted: not counted


def test_colours_are_distinct_for_a_whole_metaphase():
    colours = [chromosome_colour(number) for number in range(1, 47)]
    assert len(set(colours)) == 46
    for first, second in zip(colours, colours[1:]):
        assert np.abs(np.subtract(first, second)).max() >= 80  # neighbours (a pair) differ clearly


@pytest.mark.parametrize("ends", [((5, 5), (55, 55)), ((55, 5), (5, 55)), ((30, 2), (34, 60))], ids=["falling", "rising", "lying"])
def test_a_cutout_is_turned_upright(ends):
    shape = (64, 64)
    mask = bar(ends, shape)
    box, inside = in_box(mask)
    cut = upright_cutout(np.full(shape, 200, np.uint8), Chromosome(1, 1, box, inside, int(inside.sum()), 60.0, False, False, ""))
    assert cut.shape[0] > 4 * cut.shape[1], cut.shape
    assert cut.max() == 200 and 0.8 < (cut > 0).sum() / mask.sum() < 1.2


def cutout_order(gallery: np.ndarray, band: slice) -> list[int]:
    """The grey levels of the cut-outs in one band of rows, left to right."""
    grey = gallery[band, :, 0].astype(int)
    columns = np.flatnonzero((grey > 0).any(axis=0))
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    return [int(np.median(grey[:, run][grey[:, run] > 0])) for run in runs]


def test_gallery_is_ordered_by_length_longest_first():
    """Five vertical bars of the same size and distinct grey levels: their order in the
    gallery is that of the lengths the result gives, not of anything drawn."""
    lengths = [31.0, 75.0, 52.0, 48.0, 64.0]
    bars = {number: (((10, 10 + 25 * number), (50, 10 + 25 * number)), 50 * number, length)
            for number, length in enumerate(lengths, start=1)}
    grey, result = build(bars, set_aside=False)
    gallery = gallery_picture(grey, result)
    assert gallery.ndim == 3 and gallery.dtype == np.uint8
    levels = cutout_order(gallery, slice(0, 45))  # the cut-outs, above the ids
    by_length = sorted(range(5), key=lambda index: -lengths[index])
    stretched = [round((50 * (index + 1) - 5) * 255 / (250 - 5)) for index in by_length]
    assert levels == stretched


def test_gallery_wraps_into_rows_and_says_when_there_is_nothing():
    bars = {number: (((5, 5 + 9 * number), (25, 5 + 9 * number)), 100, 100.0 - number) for number in range(1, 15)}
    grey, result = build(bars, set_aside=False)
    gallery = gallery_picture(grey, result)
    rows_with_pixels = np.flatnonzero((gallery[..., 0] > 0).any(axis=1))
    assert len(np.split(rows_with_pixels, np.flatnonzero(np.diff(rows_with_pixels) > 1) + 1)) == 4  # 2 x (cut-outs, ids)
    empty = MetaphaseResult(SHAPE, [], [], [], float("nan"), 0.0, 0.1, 0, ("no chromosomes found",))
    placeholder = gallery_picture(np.zeros(SHAPE, np.uint8), empty)
    assert placeholder.ndim == 3 and placeholder.shape[0] < 100 and placeholder.shape[1] < 300
    assert placeholder.max() == 255  # the words are drawn


def test_a_picture_of_another_size_is_refused(built):
    _, result = built
    with pytest.raises(ValueError, match="not its image"):
        overlay_picture(np.zeros((10, 10), np.uint8), result)


def test_rows_match_the_chromosomes_and_objects_set_aside(built):
    _, result = built
    rows = chromosome_rows(result)
    assert [row["id"] for row in rows] == [1, 2, 3, 4, 5]
    assert all(set(row) == set(CHROMOSOME_COLUMNS) for row in rows)
    for row, c in zip(rows, result.chromosomes):
        assert (row["area"], row["length"], row["object_id"], row["review"]) == (c.area, c.length, c.object_id, c.review)
        assert (row["top"], row["left"], row["bottom"], row["right"]) == c.box
    assert [row["partner"] for row in rows] == ["", "", "4", "3", ""]
    assert [row["separated_by_model"] for row in rows] == [False, False, True, True, False]
    kept = set_aside_rows(result)
    assert [(row["kind"], row["object_id"]) for row in kept] == [("nucleus", 10), ("debris", 11)]
    assert all(set(row) == set(SET_ASIDE_COLUMNS) for row in kept) and kept[0]["area"] == result.set_aside[0].area


def test_summary_line_and_results_row_count_what_was_found(built):
    _, result = built
    assert summary_line("x.tif", result) == (
        "x.tif: 5 chromosomes (1 pair separated by the model, 1 flagged for review); set aside: 1 nucleus, 1 debris"
    )
    row = metaphase_row("x.tif", result)
    assert (row["chromosome_count"], row["pairs_separated_by_model"], row["flagged_for_review"]) == (5, 1, 1)
    assert (row["set_aside_nucleus"], row["set_aside_debris"], row["set_aside_faint"]) == (1, 1, 0)
    assert (row["width_px"], row["height_px"]) == (SHAPE[1], SHAPE[0])
    _, alone = build({1: BARS[1]}, set_aside=False)
    assert summary_line("y.png", alone) == "y.png: 1 chromosome (0 pairs separated by the model, 0 flagged for review); nothing set aside"


def test_saved_files_read_back_to_the_instance_layers_and_rows(built, tmp_path):
    grey, result = built
    paths = save_metaphase_outputs(grey, result, tmp_path, "x")
    assert [path.name for path in paths] == [f"x{suffix}" for suffix in METAPHASE_SUFFIXES]
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(path.name for path in paths)  # no temporaries
    first, overlap = read_instance_layers(tmp_path, "x")
    expected_first, expected_overlap = result.instance_layers()
    np.testing.assert_array_equal(first, expected_first)
    np.testing.assert_array_equal(overlap, expected_overlap)
    assert overlap[80, 40] in (3, 4) and {first[80, 40], overlap[80, 40]} == {3, 4}
    with Image.open(tmp_path / "x_instances.png") as image:  # the documented convention, without amfl
        plain = np.asarray(image)
    assert plain.dtype == np.uint16 and set(np.unique(plain)) == {0, 1, 2, 3, 4, 5}
    for c in result.chromosomes:  # chromosome i = (first == i) | (overlap == i)
        np.testing.assert_array_equal((first == c.id) | (overlap == c.id), result.full_mask(c))
    with open(tmp_path / "x_chromosomes.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["id"], row["partner"], row["review"]) for row in rows] == [
        ("1", "", "False"), ("2", "", "False"), ("3", "4", "False"), ("4", "3", "False"), ("5", "", "True")
    ]
    with open(tmp_path / "x_set_aside.csv", newline="") as handle:
        assert [row["kind"] for row in csv.DictReader(handle)] == ["nucleus", "debris"]
    with Image.open(tmp_path / "x_overlay.png") as image:
        np.testing.assert_array_equal(np.asarray(image), overlay_picture(grey, result))
