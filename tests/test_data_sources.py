import shutil

import numpy as np
import pytest

from amfl.data.sources import SOURCE_SHAPE, SourceError, download_sources, load_sources, sources_available


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


def test_download_verifies_checksums_and_keeps_only_good_files(tmp_path, source_dir, monkeypatch):
    monkeypatch.setattr("amfl.data.sources.DOWNLOAD_URL", f"file://{source_dir}/{{name}}")
    folder = download_sources(tmp_path / "fetched")
    assert sources_available(folder)
    assert (folder / "Cy3.tif").read_bytes() == (source_dir / "Cy3.tif").read_bytes()

    swapped = tmp_path / "swapped"
    swapped.mkdir()
    shutil.copy(source_dir / "DAPI.tif", swapped / "Cy3.tif")
    shutil.copy(source_dir / "DAPI.tif", swapped / "DAPI.tif")
    monkeypatch.setattr("amfl.data.sources.DOWNLOAD_URL", f"file://{swapped}/{{name}}")
    with pytest.raises(SourceError, match=r"Cy3\.tif has SHA-256 .* nothing was kept"):
        download_sources(tmp_path / "bad")
    assert sorted(path.name for path in (tmp_path / "bad").iterdir()) == ["DAPI.tif"]


def test_offline_download_names_the_file_and_address(tmp_path, monkeypatch):
    monkeypatch.setattr("amfl.data.sources.DOWNLOAD_URL", "http://127.0.0.1:9/{name}")
    with pytest.raises(SourceError, match=r"could not download DAPI\.tif from http://127\.0\.0\.1:9/DAPI\.tif"):
        download_sources(tmp_path)
    assert list(tmp_path.iterdir()) == []
