"""amfl.data.adir / real_pairs / real_export / widths: the real ADIR pairs, their labels in
the paper's classes, the recorded case split, the export and the width measurement."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from amfl.data.adir import (
    CASE_SPLIT_FILE,
    case_split,
    case_count,
    default_adir_dir,
    draw_case_split,
    list_metaphases,
    split_of_case,
)
from amfl.data.real_pairs import Cluster, balanced_split_seed, extract_real_pairs, overlap_clusters, pair_labels
from amfl.data.sources import SourceError
from amfl.data.widths import mask_width

from conftest import skip_without_adir


@pytest.fixture(scope="module")
def metaphases():
    skip_without_adir()
    return list_metaphases()


@pytest.fixture(scope="module")
def real(metaphases):
    return extract_real_pairs(metaphases, progress=False)


class _FakeMetaphase:
    name, case = "X0101XY", "A01__XY"


def _cluster(labels: np.ndarray):
    return list(overlap_clusters(labels, _FakeMetaphase()))


def test_an_overlapping_pair_gets_the_pommier_classes():
    labels = np.zeros((40, 40), np.uint8)
    labels[5:35, 18:23] = 7  # long vertical chromosome (larger)
    labels[18:23, 10:30] = 3  # shorter horizontal one
    labels[18:23, 18:23] = 255  # 25 overlap pixels
    ((cluster, component),) = _cluster(labels)
    assert cluster.kind == "overlapping" and cluster.classes == (3, 7) and cluster.overlap_px == 25
    top, left, bottom, right = cluster.box
    result = pair_labels(np.where(component, labels[top:bottom, left:right], 0), cluster)
    assert sorted(np.unique(result).tolist()) == [0, 1, 2, 3]
    assert (result == 3).sum() == 25 and (result == 1).sum() == 5 * 20 - 25 and (result == 2).sum() == 30 * 5 - 25


def test_a_touching_sliver_goes_to_the_nearest_chromosome():
    labels = np.zeros((30, 40), np.uint8)
    labels[10:15, 5:20] = 4
    labels[10:15, 21:36] = 9
    labels[10:15, 20] = 255  # a sliver of 5 pixels between them
    labels[15:17, 30:36] = 9  # 9 is the larger one, by 12 pixels
    ((cluster, component),) = _cluster(labels)
    assert cluster.kind == "touching" and cluster.classes == (4, 9)
    top, left, bottom, right = cluster.box
    result = pair_labels(np.where(component, labels[top:bottom, left:right], 0), cluster)
    assert 3 not in result and (result > 0).sum() == (labels > 0).sum()
    # the sliver column is equally near both (distance 1): ties go to the smaller chromosome
    assert (result == 1).sum() == 5 * 15 + 5 and (result == 2).sum() == 5 * 15 + 12


def test_homologues_and_three_chromosome_clusters_are_set_aside():
    labels = np.zeros((30, 60), np.uint8)
    labels[5:10, 2:20] = 5
    labels[5:10, 10] = 255  # one class only: homologues crossing
    labels[15:20, 25:35], labels[15:20, 36:45], labels[15:20, 46:55] = 1, 2, 6
    labels[15:20, 35] = labels[15:20, 45] = 255
    kinds = sorted(cluster.kind for cluster, _ in _cluster(labels))
    assert kinds == ["homologue_overlap", "multi_chromosome"]


def test_every_real_pair_is_found_and_labelled(real):
    counts = real.counts()
    assert sum(row["overlapping"] for name, row in counts.items() if name != "set_aside") == 101
    assert sum(row["touching"] for name, row in counts.items() if name != "set_aside") == 164
    assert counts["set_aside"] == {"homologue_overlap": 10, "multi_chromosome": 189}
    for pair in real.pairs:
        first, second = ((pair.labels == 1) | (pair.labels == 3)).sum(), ((pair.labels == 2) | (pair.labels == 3)).sum()
        assert first <= second, "label 1 is the smaller chromosome"
        assert pair.raw.shape == pair.masked.shape == pair.labels.shape
        assert (pair.masked[pair.labels > 0] == pair.raw[pair.labels > 0]).all()
        assert (3 in pair.labels) == (pair.cluster.kind == "overlapping")


def test_the_case_split_is_recorded_reproducible_and_disjoint(metaphases, real):
    recorded = json.loads(CASE_SPLIT_FILE.read_text())
    cases = sorted({m.case for m in metaphases})
    assert recorded["cases"] == draw_case_split(cases, recorded["seed"])
    assert balanced_split_seed([p.cluster for p in real.pairs], cases) == recorded["seed"]
    split = case_split()
    assert sorted(sum(split.values(), [])) == cases, "every case in exactly one split"
    assert [len(split[name]) for name in ("train", "validation", "test")] == [24, 11, 12]
    counts = real.counts()
    assert counts["test"]["overlapping"] >= 20 and counts["validation"]["overlapping"] >= 20
    with pytest.raises(KeyError, match="not in the recorded split"):
        split_of_case("Z99__XY")


def test_an_altered_file_is_refused_before_use(metaphases, tmp_path):
    source = metaphases[0].label_path.parents[1]
    copy = tmp_path / "adir"
    shutil.copytree(source / metaphases[0].case, copy / metaphases[0].case)
    listed = [line for line in (source / "SHA256SUMS").read_text().splitlines() if f"/{metaphases[0].case}/" in line]
    (copy / "SHA256SUMS").write_text("\n".join(listed) + "\n")
    assert len(list_metaphases(copy)) == len(list(copy.glob("*/*K.tif")))
    dapi = copy / metaphases[0].case / metaphases[0].dapi_path.name
    dapi.write_bytes(dapi.read_bytes()[:-10])
    with pytest.raises(SourceError, match="does not match its SHA-256"):
        list_metaphases(copy)


def test_case_info_gives_the_iscn_count(tmp_path):
    (tmp_path / "Case Info").write_text("45,XY,-2\nmore text\n")
    assert case_count(tmp_path) == 45
    (tmp_path / "Case Info").write_text("unknown karyotype\n")
    assert case_count(tmp_path) is None


def test_the_export_round_trips_with_its_card_and_licence(real, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    from amfl.data.real_export import export_real_pairs

    licence = default_adir_dir() / "README.TXT"
    out = export_real_pairs(real, tmp_path / "export", licence, "python -m amfl.data real-pairs x")
    loaded = datasets.load_from_disk(str(out))
    assert {name: len(split) for name, split in loaded.items()} == {
        name: sum(real.counts()[name].values()) for name in ("train", "validation", "test")
    }
    first = real.select(split="test")[0]
    np.testing.assert_array_equal(np.asarray(loaded["test"][0]["label"]), first.labels)
    np.testing.assert_array_equal(np.asarray(loaded["test"][0]["raw"]), first.raw)
    assert (out / "LICENSE.txt").read_text() == licence.read_text()
    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "other" and "189 multi chromosome" in card.text


@pytest.mark.parametrize("width", [3, 8, 11])
def test_mask_width_of_a_bar(width):
    bar = np.zeros((60, 40), bool)
    bar[5:55, 10 : 10 + width] = True
    assert mask_width(bar) == width + width % 2  # the centre line of an even bar lies between pixels


def test_clusters_know_their_split_and_probe():
    cluster = Cluster("V1301XY", case_split()["test"][0], "overlapping", (0, 0, 1, 1), (1, 2), 30)
    assert cluster.split == "test" and cluster.probe == case_split()["test"][0][0]


def test_the_real_pairs_command_exports_and_prints_the_counts(metaphases, tmp_path, capsys):
    from amfl.data.__main__ import main

    assert main(["real-pairs", str(tmp_path / "out"), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "test: 26 overlapping, 40 touching" in printed and "saved 265 pairs" in printed
    assert (tmp_path / "out" / "LICENSE.txt").is_file()


def test_the_real_pairs_command_without_the_data_says_where_to_put_it(tmp_path, capsys):
    from amfl.data.__main__ import main

    assert main(["real-pairs", str(tmp_path / "out"), "--adir", str(tmp_path / "missing")]) == 2
    assert "holds no SHA256SUMS" in capsys.readouterr().err and not (tmp_path / "out").exists()
