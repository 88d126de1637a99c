"""amfl.metaphase: the whole-metaphase mode on a synthetic metaphase built here (uneven
background, noise, rods, one crossing pair, a nucleus, specks of debris), on bad inputs, and
on one real ADIR metaphase of the training split."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from amfl.data.adir import list_metaphases, split_of_case
from amfl.metaphase import NO_CHROMOSOMES, analyse_metaphase
from amfl.segmentation import Segmenter
from conftest import BUNDLED_MODEL, skip_without_adir

SHAPE = (360, 420)
#: Six separate rods, (row, column) ends, drawn 9 px thick, 20-70 px apart (one spread).
RODS = [((120, 60), (170, 95)), ((200, 50), (200, 115)), ((250, 70), (295, 115)), ((110, 150), (140, 200)),
        ((300, 170), (310, 240)), ((230, 280), (280, 320))]
#: Two rods crossing at (195, 205).
CROSSING = [((160, 170), (230, 240)), ((160, 240), (230, 170))]
NUCLEUS_CENTRE, NUCLEUS_RADIUS = (60, 360), 42
SPECKS = [(20, 200), (340, 300), (100, 260), (340, 20)]
#: A rod over 6 widths (84 px) from the spread (another cell's).
STRAY = ((8, 10), (22, 45))


def rod_mask(ends) -> np.ndarray:
    (r0, c0), (r1, c1) = ends
    layer = np.zeros(SHAPE, np.uint8)
    cv2.line(layer, (c0, r0), (c1, r1), 1, 9)
    return layer.astype(bool)


def synthetic_metaphase(seed: int = 0, stray: bool = False) -> np.ndarray:
    """uint8: a dark background with a gradient, bright rods (the crossing pair brighter where
    it overlaps, as fluorescence adds), a textured nucleus, specks, optical blur and noise."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(np.float32)
    background = 15 + 35 * columns / SHAPE[1] + 10 * rows / SHAPE[0]
    signal = np.zeros(SHAPE, np.float32)
    for ends in RODS:
        signal += 110 * rod_mask(ends)
    for ends in CROSSING:
        signal += 100 * rod_mask(ends)
    if stray:
        signal += 110 * rod_mask(STRAY)
    nucleus = np.zeros(SHAPE, np.float32)
    cv2.circle(nucleus, NUCLEUS_CENTRE[::-1], NUCLEUS_RADIUS, 1.0, -1)
    signal += nucleus * (120 + 15 * rng.standard_normal(SHAPE).astype(np.float32))
    for row, column in SPECKS:
        cv2.circle(signal, (column, row), 1, 150.0, -1)
    image = background + cv2.GaussianBlur(signal, (0, 0), 1.5) + 3 * rng.standard_normal(SHAPE).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def segmenter() -> Segmenter:
    return Segmenter.from_pretrained(BUNDLED_MODEL)


@pytest.fixture(scope="module")
def synthetic(segmenter):
    return analyse_metaphase(synthetic_metaphase(), segmenter)


def test_counts_the_rods_and_the_crossing_pair_as_two(synthetic):
    assert synthetic.count == len(RODS) + 2
    crossing = rod_mask(CROSSING[0]) | rod_mask(CROSSING[1])
    [pair] = [o for o in synthetic.objects if o.count == 2]
    assert pair.kind == "pair"
    top, left, bottom, right = pair.box
    assert crossing[top:bottom, left:right].sum() >= 0.95 * crossing.sum()
    assert sorted(o.kind for o in synthetic.objects) == ["pair"] + ["single"] * len(RODS)
    # Seven parts, fewer than any training spread of the part counter: the hand rule counts.
    [note] = synthetic.notes
    assert note.startswith("7 parts:") and "the hand rule counted them" in note


def test_nucleus_and_debris_are_listed_not_counted_with_their_reasons(synthetic):
    kinds = sorted(s.kind for s in synthetic.set_aside)
    assert kinds == ["debris"] * len(SPECKS) + ["nucleus"]
    [nucleus] = [s for s in synthetic.set_aside if s.kind == "nucleus"]
    top, left, bottom, right = nucleus.box
    assert top <= NUCLEUS_CENTRE[0] < bottom and left <= NUCLEUS_CENTRE[1] < right
    assert "solidity" in nucleus.reason and "larger than a chromosome" in nucleus.reason
    for speck in (s for s in synthetic.set_aside if s.kind == "debris"):
        assert "under 0.4 w^2" in speck.reason
        assert any(speck.box[0] <= r < speck.box[2] and speck.box[1] <= c < speck.box[3] for r, c in SPECKS)


def test_instance_masks_cover_the_rods_and_the_crossing_shares_its_overlap(synthetic):
    masks = [synthetic.full_mask(c) for c in synthetic.chromosomes]
    for ends in RODS + CROSSING:
        rod = rod_mask(ends)
        assert np.logical_or.reduce(masks)[rod].mean() >= 0.95
        assert max(mask[rod].mean() for mask in masks) >= 0.8, f"rod {ends} is not one chromosome"
    first, second = synthetic.instance_layers()
    assert second[195, 205] > 0 and first[195, 205] > 0 and first[195, 205] != second[195, 205]
    assert not (second > 0)[~(first > 0)].any()


def test_records_are_consistent_and_json_ready(synthetic):
    ids = [c.id for c in synthetic.chromosomes]
    assert ids == list(range(1, synthetic.count + 1))
    for chromosome in synthetic.chromosomes:
        assert chromosome.area == int(chromosome.mask.sum()) > 0
        assert chromosome.mask.shape == (chromosome.box[2] - chromosome.box[0], chromosome.box[3] - chromosome.box[1])
        if chromosome.partner is not None:
            assert synthetic.chromosomes[chromosome.partner - 1].partner == chromosome.id
    singles = [c for c in synthetic.chromosomes if synthetic.objects[[o.id for o in synthetic.objects].index(c.object_id)].kind == "single"]
    for chromosome in singles:  # rods 56-72 px long, drawn with round caps
        assert 45 <= chromosome.length <= 95 and not chromosome.review
    summary = json.loads(json.dumps(synthetic.summary()))
    assert summary["count"] == synthetic.count and len(summary["set_aside"]) == len(SPECKS) + 1


@pytest.mark.parametrize("shape", [(64,), (3, 64, 64), (64, 64, 3)])
def test_non_2d_input_is_a_clear_error(segmenter, shape):
    with pytest.raises(ValueError, match=r"2-D grey image \(H, W\)"):
        analyse_metaphase(np.zeros(shape, np.uint8), segmenter)


def test_nan_input_is_a_clear_error(segmenter):
    image = np.zeros((64, 64), np.float32)
    image[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        analyse_metaphase(image, segmenter)


@pytest.mark.parametrize("name", ["all dark", "flat grey", "noise only"])
def test_an_empty_image_is_no_chromosomes_not_a_crash(segmenter, name):
    rng = np.random.default_rng(1)
    image = {
        "all dark": np.zeros(SHAPE, np.uint8),
        "flat grey": np.full(SHAPE, 40, np.uint8),
        "noise only": np.clip(12 + 2 * rng.standard_normal(SHAPE), 0, 255).astype(np.uint8),
    }[name]
    result = analyse_metaphase(image, segmenter)
    assert result.count == 0 and result.chromosomes == [] and result.objects == []
    assert any(note.startswith(NO_CHROMOSOMES) for note in result.notes)
    assert all(s.kind != "nucleus" for s in result.set_aside)


def test_a_rod_far_from_the_spread_is_another_cells(segmenter, synthetic):
    result = analyse_metaphase(synthetic_metaphase(stray=True), segmenter)
    assert result.count == synthetic.count
    [stray] = [s for s in result.set_aside if s.kind == "other_spread"]
    assert stray.box[0] <= 15 < stray.box[2] and stray.box[1] <= 28 < stray.box[3]
    assert "from the main spread" in stray.reason


def test_a_light_background_is_inverted_with_a_note(segmenter, synthetic):
    result = analyse_metaphase(255 - synthetic_metaphase(), segmenter)
    assert any("light background" in note for note in result.notes)
    assert result.count == synthetic.count


#: A training-split metaphase (never a test case) with three nuclei beside the chromosomes,
#: and the tolerance on its count. Measured: counted 46 against ISCN 46; with the nucleus rule
#: off 51, without the intensity split 33. The pipeline's mean absolute error over all
#: training metaphases is larger (README), so this is a regression check on one metaphase it
#: counts well, not a claim about all of them.
REAL_METAPHASE, REAL_TOLERANCE = "V1605XX", 2


def test_a_real_training_metaphase_is_counted_near_its_iscn_count(segmenter):
    skip_without_adir()
    [metaphase] = [m for m in list_metaphases(verify=False) if m.name == REAL_METAPHASE]
    assert split_of_case(metaphase.case) == "train"
    dapi, _ = metaphase.read()
    result = analyse_metaphase(dapi, segmenter)
    assert abs(result.count - metaphase.expected_count) <= REAL_TOLERANCE, (result.count, metaphase.expected_count)
    assert any(s.kind == "nucleus" for s in result.set_aside)
    assert result.seconds < 30
