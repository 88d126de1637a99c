import numpy as np
import pytest

from amfl.data.protocol import model_arrays, split_indices, split_pairs
from amfl.preprocessing import PAPER_IMAGE_PAD_VALUE, Preprocessor
from conftest import make_pairs


def test_split_sizes_follow_the_paper():
    indices = split_indices(13434)
    assert len(indices["train"]) + len(indices["validation"]) == 10747
    assert len(indices["test"]) == 2687
    assert len(indices["validation"]) == 2687 and len(indices["train"]) == 8060
    everything = np.concatenate(list(indices.values()))
    assert np.array_equal(np.sort(everything), np.arange(13434))


def test_split_is_seeded():
    assert np.array_equal(split_indices(100, seed=5)["test"], split_indices(100, seed=5)["test"])
    assert not np.array_equal(split_indices(100, seed=5)["test"], split_indices(100, seed=6)["test"])


def test_bad_fraction_is_refused():
    with pytest.raises(ValueError, match="test_fraction must lie strictly between 0 and 1, got 1.5"):
        split_indices(10, test_fraction=1.5)


def test_rebuilt_split_scores_only_test_samples_with_overlap(built):
    splits = split_pairs(built.clean)
    sizes = splits.sizes()
    assert (sizes.train, sizes.validation, sizes.test) == (8060, 2687, 2687)
    assert 0 < sizes.test_scored < sizes.test
    assert len(splits.test_scored) == sizes.test_scored
    assert (splits.test_scored.labels == 3).any(axis=(1, 2)).all()
    scored = splits.validation_scored
    assert 0 < len(scored) == sizes.validation_scored < sizes.validation
    assert len(scored) == int((splits.validation.labels == 3).any(axis=(1, 2)).sum())
    assert (scored.labels == 3).any(axis=(1, 2)).all()


def test_model_arrays_pad_to_128_like_the_authors():
    pairs = make_pairs(4)
    images, labels = model_arrays(pairs, Preprocessor())
    assert images.shape == (4, 1, 128, 128) and images.dtype == np.float32
    assert labels.shape == (4, 128, 128) and labels.dtype == np.int64
    # 17 rows above and below, 17 columns left and 18 right
    np.testing.assert_array_equal(labels[:, 17:111, 17:110], pairs.labels)
    assert labels[:, :17].max() == 0 and labels[:, :, 110:].max() == 0
    expected = pairs.images / pairs.images.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(images[:, 0, 17:111, 17:110], expected, rtol=1e-6)
    assert images[:, 0, :17].max() == 0 and images[:, 0, :, 110:].max() == 0


def test_paper_image_pad_value_is_available():
    pairs = make_pairs(2)
    images, _ = model_arrays(pairs, Preprocessor(pad_value=PAPER_IMAGE_PAD_VALUE))
    peaks = np.maximum(pairs.images.max(axis=(1, 2)), PAPER_IMAGE_PAD_VALUE)
    expected = np.broadcast_to((PAPER_IMAGE_PAD_VALUE / peaks)[:, None, None], images[:, 0, :17].shape)
    np.testing.assert_allclose(images[:, 0, :17], expected, rtol=1e-6)
