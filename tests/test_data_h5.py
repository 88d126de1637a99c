import h5py
import numpy as np
import pytest

from amfl.data.dataset import load_pairs
from amfl.data.h5 import H5FormatError, read_h5
from conftest import make_pairs


def _write(path, name, array):
    with h5py.File(path, "w") as handle:
        handle.create_dataset(name, data=array, compression="gzip")
    return path


def test_original_layout_reads_into_pairs(tmp_path):
    pairs = make_pairs(5)
    stacked = pairs.stacked().astype(np.int64)  # the original file stores int64
    stacked[0, 3, 3, 0] = -7  # spline undershoot survives
    pairs_read, already_clean = read_h5(_write(tmp_path / "orig.h5", "dataset_1", stacked), progress=False)
    assert not already_clean
    np.testing.assert_array_equal(pairs_read.images, stacked[..., 0])
    np.testing.assert_array_equal(pairs_read.labels, pairs.labels)
    assert pairs_read.images.dtype == np.int16 and pairs_read.labels.dtype == np.uint8


def test_cleaned_variant_is_recognised(tmp_path):
    path = _write(tmp_path / "clean.h5", "13434_overlapping_chrom_pairs_LowRes", make_pairs(3).stacked())
    _, already_clean = read_h5(path, progress=False)
    assert already_clean
    with pytest.raises(ValueError, match="holds cleaned labels"):
        load_pairs(path, cleaned=False, progress=False)


def test_raw_file_is_cleaned_on_request(tmp_path):
    stacked = make_pairs(3).stacked().astype(np.int64)
    stacked[1, 40, 20, 1] = 4
    path = _write(tmp_path / "orig.h5", "dataset_1", stacked)
    assert load_pairs(path, cleaned=False, progress=False).labels.max() == 4
    assert load_pairs(path, cleaned=True, progress=False).labels.max() == 3


@pytest.mark.parametrize(
    ("name", "array", "message"),
    [
        ("images", np.zeros((2, 94, 93, 2)), r"expected a dataset named dataset_1 .*found images"),
        ("dataset_1", np.zeros((2, 94, 93)), r"has shape \(2, 94, 93\), expected \(N, H, W, 2\)"),
        ("dataset_1", np.zeros((0, 94, 93, 2)), r"with N > 0"),
        ("dataset_1", np.full((2, 94, 93, 2), 9), r"label values must lie in 0..4"),
    ],
)
def test_wrong_layouts_name_the_file_and_the_expectation(tmp_path, name, array, message):
    path = _write(tmp_path / "bad.h5", name, array)
    with pytest.raises(H5FormatError, match=message) as error:
        read_h5(path, progress=False)
    assert str(path) in str(error.value)


def test_truncated_and_missing_files_fail_clearly(tmp_path):
    path = _write(tmp_path / "orig.h5", "dataset_1", make_pairs(20).stacked())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(H5FormatError, match="not a readable HDF5 file"):
        read_h5(path, progress=False)
    with pytest.raises(H5FormatError, match="file not found"):
        read_h5(tmp_path / "absent.h5", progress=False)
