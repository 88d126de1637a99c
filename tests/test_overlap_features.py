"""The overlap-part features tell a crossing's shape from a seam's: stretches of each
chromosome on the border, thickness, and whether the part lies over truth overlap; the
command reports them for the bundled model on real and Pommier crops."""

import numpy as np
import pytest

from amfl.naming import FIRST, OVERLAP, SECOND
from amfl.overlap_features import PartFeatures, feature_rows, main, parse_args, part_features
from conftest import skip_without_adir


def _crossing() -> np.ndarray:
    """A 13 x 13 cross: chromosome 1 runs left to right, chromosome 2 top to bottom, both
    through a 3 x 3 overlap in the middle."""
    labels = np.zeros((13, 13), dtype=np.uint8)
    labels[5:8, :] = FIRST
    labels[:, 5:8] = SECOND
    labels[5:8, 5:8] = OVERLAP
    return labels


def _seam() -> np.ndarray:
    """Two 6 x 5 chromosomes side by side with a one-pixel column of overlap where they meet."""
    labels = np.zeros((6, 11), dtype=np.uint8)
    labels[:, :5] = FIRST
    labels[:, 6:] = SECOND
    labels[:, 5] = OVERLAP
    return labels


def test_a_crossing_is_bordered_twice_by_each_chromosome():
    (part,) = part_features(_crossing(), _crossing())
    assert (part.fewer_stretches, part.more_stretches) == (2, 2)
    assert part.pixels == 9
    assert part.thickness == 2.0
    assert part.over_crossing


def test_a_seam_sliver_is_bordered_once_by_each_and_is_thin():
    truth = _seam()
    truth[truth == OVERLAP] = FIRST  # touching: no overlap in the truth
    (part,) = part_features(_seam(), truth)
    assert (part.fewer_stretches, part.more_stretches) == (1, 1)
    assert part.pixels == 6
    assert part.thickness == 1.0
    assert not part.over_crossing


def test_an_end_lying_on_a_chromosome_is_bordered_once_by_it():
    labels = _crossing()
    labels[8:, 5:8] = 0  # chromosome 2 now ends in the overlap
    (part,) = part_features(labels, labels)
    assert (part.fewer_stretches, part.more_stretches) == (1, 2)


def test_rows_split_each_group_by_crossing_and_count_the_shares():
    parts = [
        PartFeatures(9, 2.0, 2, 2, True),
        PartFeatures(6, 1.0, 1, 1, False),
        PartFeatures(4, 1.0, 1, 1, False),
        PartFeatures(2, 1.0, 0, 1, False),
    ]
    over, off = feature_rows([({"source": "s"}, parts)])
    assert (over["over crossing"], over["parts"], over["two or more each %"]) == ("yes", 1, 100.0)
    assert (off["over crossing"], off["parts"], off["median pixels"]) == ("no", 3, 4.0)
    assert off["one stretch each %"] == pytest.approx(100 * 2 / 3)  # the last is bordered by one chromosome only
    assert off["two or more each %"] == 0.0


def test_a_group_without_parts_gives_no_row():
    assert feature_rows([({"source": "s"}, [])]) == []


def test_a_negative_pommier_count_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--pommier", "-1"])
    assert "--pommier must be 0 or more" in capsys.readouterr().err


def test_main_names_a_missing_model(tmp_path, capsys):
    assert main(["--model", str(tmp_path / "missing"), "--pommier", "0"]) == 2
    assert "cannot load model" in capsys.readouterr().err


def test_main_reports_the_bundled_models_parts_on_real_and_pommier_crops(training_h5, tmp_path):
    skip_without_adir()
    out = tmp_path / "features.md"
    assert main(["--split", "validation", "--pommier", "20", "--h5", str(training_h5), "--out", str(out)]) == 0
    rows = {tuple(cell.strip() for cell in line.split("|")[1:5]) for line in out.read_text().splitlines()[2:]}
    assert ("real validation", "touching", "masked", "no") in rows  # the default's strays on touching pairs
    assert ("real validation", "overlapping", "masked", "yes") in rows
    assert ("Pommier train", "overlapping", "raw", "yes") in rows
