import h5py
import numpy as np
from PIL import Image

from amfl.data.__main__ import main
from conftest import make_pairs


def _h5(tmp_path):
    path = tmp_path / "orig.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("dataset_1", data=make_pairs(10).stacked().astype(np.int64))
    return path


def test_show_writes_a_grid_in_the_paper_colours(tmp_path):
    out = tmp_path / "grid.png"
    assert main(["show", str(out), "--h5", str(_h5(tmp_path)), "--count", "4", "--columns", "2", "--quiet"]) == 0
    pixels = np.array(Image.open(out).convert("RGB")).reshape(-1, 3)
    colours = {tuple(p) for p in np.unique(pixels, axis=0)}
    assert {(255, 0, 0), (0, 255, 0), (0, 0, 255)} <= colours


def test_export_from_an_h5_then_offline_push_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out_dir = tmp_path / "export"
    code = main(["export", str(out_dir), "--h5", str(_h5(tmp_path)), "--quiet", "--push_to_hub", "a/b"])
    assert code == 1
    assert "could not push to the Hub dataset a/b" in capsys.readouterr().err
    assert (out_dir / "README.md").is_file()


def test_missing_sources_give_a_one_line_error_and_exit_2(tmp_path, capsys):
    assert main(["build", "--source", str(tmp_path), "--quiet", "--cache", str(tmp_path / "c.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "DAPI.tif: file not found" in err and "\n" not in err
    assert not (tmp_path / "c.npz").exists()


def test_bad_h5_gives_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    assert main(["show", str(tmp_path / "g.png"), "--h5", str(bad), "--quiet"]) == 2
    assert "bad.h5: not a readable HDF5 file" in capsys.readouterr().err


def test_fidelity_command_reports_the_authors_masks(built, source_dir, capsys):
    assert main(["fidelity", "--source", str(source_dir), "--cache", str(built.path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "twin with identical foreground: 1209 (100.00%)" in out
