import numpy as np

from amfl.data.cleaning import clean_label_map, clean_pairs
from amfl.data.pairs import OverlapPairs


def _two_chromosomes_with_artefacts() -> np.ndarray:
    """Chromosome 1 (vertical bar) crossing chromosome 2 (horizontal bar), overlap 3, with a
    one-pixel rim of label 1 along chromosome 2's lower edge and two invalid 4s."""
    labels = np.zeros((40, 40), np.uint8)
    labels[5:35, 10:18] = 1
    labels[15:23, 4:34] = 2
    labels[15:23, 10:18] = 3
    labels[22, 20:34] = 1  # rim: chromosome 2's edge rounded to the other label
    labels[18, 30] = 4
    labels[16, 25] = 4
    return labels


def test_rim_of_the_other_label_joins_the_chromosome_it_lies_on():
    cleaned = clean_label_map(_two_chromosomes_with_artefacts())
    assert (cleaned[22, 20:34] == 2).all()


def test_invalid_4s_take_the_surrounding_label():
    cleaned = clean_label_map(_two_chromosomes_with_artefacts())
    assert cleaned[18, 30] == 2 and cleaned[16, 25] == 2
    assert cleaned.max() == 3


def test_bodies_and_foreground_are_kept():
    labels = _two_chromosomes_with_artefacts()
    cleaned = clean_label_map(labels)
    np.testing.assert_array_equal(cleaned > 0, labels > 0)
    assert (cleaned[6:14, 11:17] == 1).all() and (cleaned[16:21, 11:17] == 3).all()


def test_overlap_too_thin_to_hold_a_seed_is_absorbed():
    labels = np.zeros((30, 30), np.uint8)
    labels[5:25, 10:16] = 1
    labels[12:18, 16:26] = 2
    labels[14, 16] = 3  # a single overlap pixel cannot survive the radius-1 opening
    cleaned = clean_label_map(labels)
    assert 3 not in cleaned
    assert cleaned[14, 16] in (1, 2)


def test_report_counts_changed_pixels_and_samples():
    artefacts = _two_chromosomes_with_artefacts()
    clean_already = clean_label_map(artefacts)
    labels = np.stack([artefacts, clean_already])
    pairs = OverlapPairs(np.zeros(labels.shape, np.int16), labels)
    cleaned, report = clean_pairs(pairs, progress=False)
    assert report.samples == 2
    assert report.changed_samples == 1
    assert report.changed_pixels == int((cleaned.labels[0] != artefacts).sum()) == 16
    assert cleaned.images is pairs.images
