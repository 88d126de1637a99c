import shutil

import numpy as np
import pytest

from amfl.data.sources import SOURCE_SHAPE, SourceError, load_sources


def test_missing_file_names_the_file_and_the_origin(tmp_path):
    with pytest.raises(SourceError, match=r"DAPI\.tif: file not found.*DeepFISH"):
        load_sources(tmp_path)


def test_truncated_file_fails_the_checksum(tmp_path, source_dir):
    shutil.copy(source_dir / "DAPI.tif", tmp_path / "DAPI.tif")
    data = (source_dir / "Cy3.tif").read_bytes()
    (tmp_path / "Cy3.tif").write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"Cy3\.tif: SHA-256 .* does not match"):
        load_sources(tmp_path)


def test_genuine_sources_load_as_12_bit_images(source_dir):
    sources = load_sources(source_dir)
    for channel in (sources.dapi, sources.cy3):
        assert channel.shape == SOURCE_SHAPE and channel.dtype == np.uint16
        assert channel.max() < 4096
