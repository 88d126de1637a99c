"""amfl.metaphase_truth: the count errors by kind and the review-flag coverage of one metaphase
(and the evaluation CLI on a folder that is not the ADIR set),
on a MetaphaseResult and expert groups built here by hand, so every right answer is known."""

from __future__ import annotations

import numpy as np

from amfl.metaphase import Chromosome, MetaphaseObject, MetaphaseResult, SetAside
from amfl.metaphase_truth import FOUND_SHARE, compare_with_expert, per_region

SHAPE = (40, 60)


def block(top: int, left: int, bottom: int, right: int) -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[top:bottom, left:right] = True
    return mask


def chromosome(number: int, object_id: int, mask: np.ndarray, review: bool) -> Chromosome:
    rows, columns = np.nonzero(mask)
    box = (int(rows.min()), int(columns.min()), int(rows.max()) + 1, int(columns.max()) + 1)
    inside = mask[box[0] : box[2], box[1] : box[3]]
    return Chromosome(number, object_id, box, inside, int(inside.sum()), 5.0, False, review, "flag" if review else "")


def test_errors_by_kind_and_which_of_them_carry_a_review_flag():
    # Object 1: one chromosome, counted once (right, no flag). Object 2: one chromosome cut in
    # two (over-split, flagged). Object 3: two touching chromosomes counted as one (under-split,
    # not flagged). Object 4: nothing the expert labelled, counted once (flagged). Object 5 is
    # a nucleus holding one expert chromosome; one expert chromosome lies outside every object.
    one, two_a, two_b, three, four = block(2, 2, 8, 12), block(2, 20, 8, 25), block(2, 25, 8, 30), block(12, 2, 20, 20), block(12, 30, 18, 36)
    chromosomes = [
        chromosome(1, 1, one, False), chromosome(2, 2, two_a, True), chromosome(3, 2, two_b, True),
        chromosome(4, 3, three, False), chromosome(5, 4, four, True),
    ]
    objects = [
        MetaphaseObject(1, (2, 2, 8, 12), int(one.sum()), "single", 1, (1,)),
        MetaphaseObject(2, (2, 20, 8, 30), int((two_a | two_b).sum()), "pair", 2, (2, 3)),
        MetaphaseObject(3, (12, 2, 20, 20), int(three.sum()), "single", 1, (4,)),
        MetaphaseObject(4, (12, 30, 18, 36), int(four.sum()), "single", 1, (5,)),
    ]
    nucleus = block(25, 40, 38, 58)
    set_aside = [SetAside(5, (25, 40, 38, 58), int(nucleus.sum()), "nucleus", "round", nucleus[25:38, 40:58])]
    result = MetaphaseResult(SHAPE, chromosomes, objects, set_aside, 5.0, 10.0, 0.1, 0)
    groups = [
        (one, 1), (two_a | two_b, 1), (block(12, 2, 20, 10), 1), (block(12, 10, 20, 20), 1),
        (block(28, 44, 34, 52), 1), (block(30, 2, 36, 10), 1),
    ]
    compared = compare_with_expert(result, groups)
    assert compared["failures"] == {
        "over_split": 1, "under_split": 1, "unlabelled_counted": 1, "set_aside_chromosomes": 1, "missed": 1,
    }
    assert compared["review_coverage"] == {
        "objects_wrong": 3, "objects_wrong_flagged": 2, "objects_right": 1, "objects_right_flagged": 0,
    }


def test_a_chromosome_goes_to_the_region_holding_most_of_it_even_when_most_lies_in_the_background():
    regions = np.zeros((10, 20), np.int32)
    regions[:, :4] = 1
    regions[:, 4:6] = 2
    chromosome = np.zeros_like(regions, bool)
    chromosome[:, :10] = True  # 40 % in region 1, 20 % in region 2, 40 % in the background
    assert per_region(regions, [(chromosome, 1)]).tolist() == [0, 1, 0]
    faint = np.zeros_like(regions, bool)
    faint[0, :4] = True
    faint[1:, 8:] = True  # 4 of 112 pixels in region 1: below FOUND_SHARE, so not found
    assert (faint & (regions == 1)).sum() < FOUND_SHARE * faint.sum()
    assert per_region(regions, [(faint, 2)]).tolist() == [2, 0, 0]


def test_the_evaluation_cli_names_a_folder_that_is_not_the_adir_set(tmp_path, capsys):
    from amfl import metaphase_eval

    assert metaphase_eval.main(["--adir", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "holds no SHA256SUMS: not the ADIR metaphase folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
