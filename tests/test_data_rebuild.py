"""The recipe must not drift: counts, shapes, label values, the cache, the authors' masks."""

import numpy as np
import pytest

from amfl.data.cache import load_arrays, save_arrays
from amfl.data.dataset import load_rebuilt, load_rebuilt_variants
from amfl.data.fidelity import compare_with_authors, load_authors_masks
from amfl.data.rebuild import centre_on_canvas


def test_rebuild_has_13434_samples_of_94_by_93(built):
    assert len(built.raw) == 13434
    assert built.raw.images.shape == (13434, 94, 93)
    assert built.raw.labels.shape == (13434, 94, 93)


def test_every_raw_sample_overlaps_and_raw_labels_keep_the_spline_4s(built):
    labels = built.raw.labels
    assert (labels == 3).any(axis=(1, 2)).all()
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4}


def test_cleaning_removes_4s_and_keeps_the_foreground_of_seeded_samples(built):
    raw, clean = built.raw.labels, built.clean.labels
    assert set(np.unique(clean)) == {0, 1, 2, 3}
    assert built.cleaning.changed_pixels == int((raw != clean).sum()) > 0
    # the cleaning only re-labels chromosome pixels: it never adds foreground
    assert not ((clean > 0) & (raw == 0)).any()


def test_grey_channel_is_dark_background_and_brighter_overlaps(built):
    images, labels = built.raw.images, built.raw.labels
    # only spline rims put a little grey outside the masks
    assert (images[labels == 0] > 0).mean() < 0.01
    overlap_mean = images[labels == 3].mean()
    assert overlap_mean > 1.5 * max(images[labels == 1].mean(), images[labels == 2].mean())
    assert images.max() > 255


def test_cached_reload_equals_the_build(built):
    reloaded = load_rebuilt(cache_path=built.path, progress=False)
    np.testing.assert_array_equal(reloaded.images, built.clean.images)
    np.testing.assert_array_equal(reloaded.labels, built.clean.labels)
    raw, _ = load_rebuilt_variants(cache_path=built.path, progress=False)
    np.testing.assert_array_equal(raw.labels, built.raw.labels)
    assert not list(built.path.parent.glob("*.part"))


def test_a_damaged_cache_is_not_trusted(tmp_path):
    path = tmp_path / "pairs.npz"
    path.write_bytes(b"not an npz archive")
    assert load_arrays(path, ("images",)) is None
    save_arrays(path, {"images": np.arange(3)})
    assert load_arrays(path, ("images", "clean_labels")) is None
    np.testing.assert_array_equal(load_arrays(path, ("images",))["images"], np.arange(3))


def test_rebuild_matches_the_authors_test_masks(built, source_dir):
    authors = load_authors_masks(source_dir / "authors_test_masks_even.npz", (94, 93))
    report = compare_with_authors(built.clean, authors)
    assert report.masks == 1209
    assert report.identical_foreground == 1209
    assert report.within[44] / report.masks >= 0.95
    assert report.within[9] / report.masks >= 0.90


@pytest.mark.parametrize(
    ("sizes", "canvas_offsets"),
    [
        # canvas 7 rows: (7-2)/2 = 2.5 rounds to 2 (half to even), (7-4)/2 = 1.5 rounds to 2
        ([(2, 1), (4, 1), (7, 1)], [2, 2, 0]),
        # (6-1)/2 = 2.5 -> 2; (6-3)/2 = 1.5 -> 2
        ([(1, 1), (3, 1), (6, 1)], [2, 2, 0]),
    ],
)
def test_centring_uses_round_half_to_even(sizes, canvas_offsets):
    images = [np.ones(size, np.uint8) for size in sizes]
    canvas = centre_on_canvas(images)
    tops = [int(np.argmax(slot[:, 0])) for slot in canvas]
    assert tops == canvas_offsets
