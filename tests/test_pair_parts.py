"""amfl.pair_parts: a pair crop keeps its central part, pieces of neighbours at the edge go;
a whole field, segmented in tiles, keeps every part."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from amfl.models import create_model
from amfl.naming import FIRST, OVERLAP, SECOND
from amfl.overlap_sweep import NetworkOutputs, settings_grid, sweep_rows
from amfl.pair_parts import drop_small_parts, drop_small_parts_batch
from amfl.preprocessing import PREPROCESSOR_FILE, Preprocessor
from amfl.real_scoring import RealPredictions
from amfl.segmentation import Segmenter
from amfl.tiling import Tiling


def _crop_with_neighbour() -> np.ndarray:
    """A 40 x 40 crop: a crossing pair in the middle (105 px) and a long neighbour along the
    left edge (160 px, the larger part, none of it in the middle half)."""
    labels = np.zeros((40, 40), np.uint8)
    labels[14:26, 16:21] = FIRST
    labels[18:23, 14:28] = SECOND
    labels[18:23, 16:21] = OVERLAP
    labels[0:40, 0:4] = SECOND
    return labels


def test_the_central_part_is_kept_even_beside_a_larger_neighbour_at_the_edge():
    labels = _crop_with_neighbour()
    kept = drop_small_parts(labels, 1.0)
    assert not kept[:, :4].any()
    assert np.array_equal(kept[:, 4:], labels[:, 4:])
    assert kept.dtype == labels.dtype


def test_a_share_of_zero_keeps_every_part_and_a_lone_part_is_left_as_it_is():
    labels = _crop_with_neighbour()
    assert drop_small_parts(labels, 0.0) is labels
    alone = np.where(np.arange(40)[None, :] < 4, 0, labels).astype(np.uint8)
    assert drop_small_parts(alone, 1.0) is alone


def test_the_share_says_how_small_a_central_part_may_be():
    """A second central part with a third of the main part's middle pixels: kept by a share
    of 0.2, dropped by 0.5."""
    labels = np.zeros((40, 40), np.uint8)
    labels[12:28, 12:18] = FIRST
    labels[12:20, 22:26] = SECOND
    assert np.array_equal(drop_small_parts(labels, 0.2), labels)
    dropped = drop_small_parts(labels, 0.5)
    assert not (dropped == SECOND).any() and np.array_equal(dropped == FIRST, labels == FIRST)


def test_pixels_that_meet_at_a_corner_are_one_part():
    """A thin chromosome at a slant is one part: its far end is not dropped."""
    labels = np.zeros((40, 40), np.uint8)
    labels[np.arange(5, 35), np.arange(5, 35)] = FIRST
    assert np.array_equal(drop_small_parts(labels, 1.0), labels)


def test_every_map_of_a_stack_keeps_its_own_central_part():
    crop = _crop_with_neighbour()
    stack = np.stack([crop, np.fliplr(crop)])
    kept = drop_small_parts_batch(stack, 1.0)
    assert np.array_equal(kept, np.stack([drop_small_parts(crop, 1.0), np.fliplr(drop_small_parts(crop, 1.0))]))


@pytest.mark.parametrize("share", ["min_part_share", "cut_piece_share"])
def test_the_preprocessor_saves_each_output_share_refuses_bad_ones_and_reads_older_files_as_off(tmp_path, share):
    """The part share here and the cut-piece share of amfl.piece_names, both 0..1 and off in older files."""
    saved = Preprocessor(**{share: 0.1})
    saved.save(tmp_path)
    assert Preprocessor.read(tmp_path / PREPROCESSOR_FILE) == saved
    older = Preprocessor().to_dict()
    del older[share]
    assert getattr(Preprocessor.from_dict(older), share) == 0
    for wrong in (-0.1, 1.5, "0.5", True, float("nan")):
        with pytest.raises(ValueError, match=f"{share} must be a number from 0 to 1"):
            Preprocessor(**{share: wrong})


def test_the_output_drops_neighbours_of_a_crop_but_not_parts_of_a_whole_field():
    labels = _crop_with_neighbour()
    seen = (labels > 0).astype(np.float32)
    output = Preprocessor(min_part_share=1.0)
    assert not output.finish(labels, seen)[:, :4].any()
    assert np.array_equal(output.finish(labels, seen, whole_field=True), labels)


@pytest.mark.parametrize(("above_pixels", "tiled"), [(10**9, False), (0, True)])
def test_the_segmenter_tells_the_output_whether_the_image_was_a_tiled_whole_field(monkeypatch, above_pixels, tiled):
    seen_fields = []
    finish = Preprocessor.finish
    monkeypatch.setattr(Preprocessor, "finish", lambda self, labels, images, whole_field=False: (
        seen_fields.append(whole_field) or finish(self, labels, images, whole_field)))
    model = create_model("amfl-small", base_width=4)
    segmenter = Segmenter(model, preprocessor=Preprocessor.for_model(model, min_part_share=1.0), tiling=Tiling(above_pixels=above_pixels))
    segmenter.segment_grey(np.random.default_rng(0).random((160, 160), np.float32))
    assert seen_fields == [tiled]


def test_the_sweep_scores_each_part_share_on_the_same_network_labels():
    """The neighbour painted in the raw crop costs Dice until the share drops it; the masked
    crop, the pair alone, scores the same at every share."""
    painted = _crop_with_neighbour()
    truth = drop_small_parts(painted, 1.0)
    pair = SimpleNamespace(labels=truth, cluster=SimpleNamespace(kind="overlapping"))
    seen = {"raw": [(painted > 0).astype(np.float32)], "masked": [(truth > 0).astype(np.float32)]}
    real = RealPredictions("m", [pair], {"raw": [painted], "masked": [truth]})
    outputs = NetworkOutputs(truth[None], truth[None], seen["masked"][0][None], real, seen)
    rows = sweep_rows(settings_grid(Preprocessor(), [0], [0.0], [0.0], [0.0, 1.0]), outputs)
    assert [row["min part share"] for row in rows] == [0.0, 1.0]
    assert rows[0]["overlapping raw Dice"] < rows[1]["overlapping raw Dice"] == pytest.approx(100)
    assert rows[0]["overlapping masked Dice"] == rows[1]["overlapping masked Dice"] == pytest.approx(100)
