"""Synthetic pairs from real singles: only training cases feed them, the labels follow the
Pommier naming, the seed decides everything, the background is a real patch, neighbours
add light around the pair but no label, and touching pairs meet along a line without
overlapping.

Fixtures: the first two training metaphases of the ADIR set with a non-black background
(so that a real patch is told from zeros) and the first metaphase of another split."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from amfl.data.adir import list_metaphases, split_of_case
from amfl.data.singles import HALO_PX, cut_singles, find_background_patches, training_metaphases
from amfl.data.sources import SourceError
from amfl.data.synthetic import (
    MIN_CONTACT_PX, MIN_OVERLAP_PX, REAL_NEIGHBOURS, contact_pixels, ingredients_from, synthesise,
)

PAIRS = 40
#: Pairs whose background is traced back to a patch (the search is the slow part).
TRACED_PAIRS = 6
#: Seeds of the one-canvas comparisons with and without neighbours (same pair, same patch).
NEIGHBOUR_SEEDS = range(20)
#: Neighbours per canvas in those comparisons: the most of REAL_NEIGHBOURS.
CROWD = REAL_NEIGHBOURS[1]
#: A neighbour may change a pair pixel by its halo's light only (measured: at most 3 grey
#: levels over 30 seeds), never by a chromosome's (tens of grey levels).
HALO_CHANGE_GREY = 5
#: A pixel this many grey levels brighter than without neighbours is a neighbour's light.
NEIGHBOUR_LIGHT_GREY = 20


@pytest.fixture(scope="module")
def metaphases():
    """(two training metaphases, one of another split)."""
    try:
        every = list_metaphases(verify=False)
    except SourceError as error:
        pytest.skip(f"ADIR metaphases not available ({error}); set AMFL_ADIR")
    training = []
    for metaphase in training_metaphases(every):
        dapi, labels = metaphase.read()
        if np.median(dapi[labels == 0]) > 0:
            training.append(metaphase)
        if len(training) == 2:
            break
    other = next(m for m in every if split_of_case(m.case) != "train")
    return training, other


@pytest.fixture(scope="module")
def ingredients(metaphases):
    training, other = metaphases
    return ingredients_from([training[0], other, training[1]])


@pytest.fixture(scope="module")
def pairs(ingredients):
    return synthesise(PAIRS, ingredients, seed=0)


def test_other_splits_are_refused(metaphases):
    training, other = metaphases
    with pytest.raises(ValueError, match="only training cases"):
        cut_singles([training[0], other])
    with pytest.raises(ValueError, match="only training cases"):
        find_background_patches([other, training[0]])


def test_only_training_chromosomes_and_backgrounds_are_used(metaphases, ingredients):
    training, other = metaphases
    singles = cut_singles(training_metaphases([training[0], other, training[1]]))
    assert singles and {single.source for single in singles} <= {m.name for m in training}
    assert len(ingredients.rotations) == len(singles)
    assert len(ingredients.patches.images) == len(find_background_patches(training).images)


def test_singles_keep_their_halo(metaphases):
    for single in cut_singles(metaphases[0]):
        outside = ndimage.distance_transform_edt(~single.mask)
        assert single.signal[(outside > 0) & (outside <= 2)].mean() > 0
        assert not single.signal[outside > HALO_PX].any()


def test_labels_follow_the_pommier_naming(pairs):
    assert pairs.images.dtype == np.uint8 and pairs.labels.dtype == np.uint8
    assert pairs.images.shape == pairs.labels.shape == (PAIRS, 128, 128)
    assert set(np.unique(pairs.labels)) == {0, 1, 2, 3}
    counts = np.stack([(pairs.labels == value).sum(axis=(1, 2)) for value in range(4)], axis=1)
    assert (counts[:, 3] >= MIN_OVERLAP_PX).all()
    assert (counts[:, 1] + counts[:, 3] <= counts[:, 2] + counts[:, 3]).all()


def test_the_seed_decides_everything(ingredients, pairs):
    again = synthesise(PAIRS, ingredients, seed=0)
    assert np.array_equal(again.images, pairs.images) and np.array_equal(again.labels, pairs.labels)
    other = synthesise(PAIRS, ingredients, seed=1)
    assert not np.array_equal(other.labels, pairs.labels)


def test_neighbours_follow_the_seed_and_keep_the_naming(ingredients):
    crowded = synthesise(PAIRS, ingredients, seed=0, neighbours=REAL_NEIGHBOURS)
    again = synthesise(PAIRS, ingredients, seed=0, neighbours=REAL_NEIGHBOURS)
    assert np.array_equal(again.images, crowded.images) and np.array_equal(again.labels, crowded.labels)
    assert set(np.unique(crowded.labels)) == {0, 1, 2, 3}
    assert ((crowded.labels == 3).sum(axis=(1, 2)) >= MIN_OVERLAP_PX).all()


def test_neighbours_add_light_around_the_pair_but_no_label(ingredients):
    """One canvas per seed, with and without neighbours: the same pair on the same patch
    (the neighbours are drawn last), so the labels are the same, the pair's pixels change by
    at most a halo's light, and away from the pair a neighbour's light appears."""
    for seed in NEIGHBOUR_SEEDS:
        alone, crowded = (synthesise(1, ingredients, seed=seed, neighbours=count) for count in (0, CROWD))
        assert np.array_equal(crowded.labels, alone.labels)
        change = crowded.images[0].astype(int) - alone.images[0].astype(int)
        pair = alone.labels[0] > 0
        assert np.abs(change[pair]).max() <= HALO_CHANGE_GREY
        away = ndimage.distance_transform_edt(~pair) > HALO_PX
        assert (change[away] > NEIGHBOUR_LIGHT_GREY).any()


def test_a_wrong_neighbour_count_is_refused(ingredients):
    for wrong in (-1, (5, 4), (-2, 3)):
        with pytest.raises(ValueError, match="neighbours"):
            synthesise(1, ingredients, neighbours=wrong)


def test_touching_pairs_meet_along_a_line_without_overlap(ingredients):
    """Labels 1 and 2 only (the sliver went to the nearer chromosome), the smaller
    chromosome 1; MIN_CONTACT_PX or more pixels share an edge with the other chromosome, so
    the pair is one object (no gap); the seed decides them."""
    touching = synthesise(PAIRS, ingredients, seed=0, neighbours=REAL_NEIGHBOURS, kind="touching")
    assert touching.images.shape == touching.labels.shape == (PAIRS, 128, 128)
    assert set(np.unique(touching.labels)) == {0, 1, 2}
    for labels in touching.labels:
        assert (labels == 1).sum() <= (labels == 2).sum()
        assert contact_pixels(labels).sum() >= MIN_CONTACT_PX
        assert ndimage.label(labels > 0)[1] == 1
    again = synthesise(PAIRS, ingredients, seed=0, neighbours=REAL_NEIGHBOURS, kind="touching")
    assert np.array_equal(again.images, touching.images) and np.array_equal(again.labels, touching.labels)


def test_contact_pixels_are_those_beside_the_other_chromosome():
    labels = np.zeros((5, 6), np.uint8)
    labels[1:4, 1:3] = 1
    labels[1:4, 3:5] = 2
    labels[0, 3] = 2  # touches a 1 only at a corner: no contact
    expected = np.zeros_like(labels, dtype=bool)
    expected[1:4, 2:4] = True
    assert np.array_equal(contact_pixels(labels), expected)


def test_an_unknown_pair_kind_is_refused(ingredients):
    with pytest.raises(ValueError, match="kind must be one of overlapping, touching; got 'crossing'"):
        synthesise(1, ingredients, kind="crossing")


def _orientations(array: np.ndarray) -> list[np.ndarray]:
    """The 8 turns and mirrors of a square array."""
    turns = [np.rot90(array, k) for k in range(4)]
    return turns + [turn[:, ::-1] for turn in turns]


def test_the_background_is_a_real_patch(ingredients, pairs):
    """Away from the pair, every pixel is a pixel of a chromosome-free window of a training
    metaphase, in one of its 8 orientations, and not all of them are black."""
    windows = np.stack([ingredients.patches.patch(i) for i in range(len(ingredients.patches.corners))])
    for image, labels in zip(pairs.images[:TRACED_PAIRS], pairs.labels[:TRACED_PAIRS]):
        far = ndimage.distance_transform_edt(labels == 0) > HALO_PX + 2
        assert image[far].any()
        assert any(
            (windows[:, turned_far] == turned[turned_far]).all(axis=1).any()
            for turned, turned_far in zip(_orientations(image), _orientations(far))
        )
