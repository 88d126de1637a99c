"""``python -m amfl.sweep_gate``: which swept rows beat the gate on every measure, read from the
tables that ``amfl.overlap_sweep`` writes."""

import pytest

from amfl.overlap_sweep import sweep_table
from amfl.sweep_gate import SweepError, gate_row, main, read_sweep, tally

MEASURES = ("Pommier Dice", "Pommier IoU", "Pommier Hausdorff", "overlapping raw Dice", "overlapping masked Dice",
            "touching raw Dice", "touching masked Dice")
GATE = (94.7, 91.7, 3.2, 68.0, 82.0, 69.0, 76.0)


def row(
    part: float, piece: float, measures: tuple[float, ...], arms: int | None = None, reach: int | None = None,
    covered: int | None = None,
) -> dict[str, object]:
    """One sweep row as ``amfl.overlap_sweep.sweep_rows`` builds it; without ``arms``, ``reach``
    or ``covered``, as the sweeps written before the crossing-arms step, its reach or the
    covered chromosomes, which have no such column."""
    settings = {"min overlap pixels": 0, "min border share": 0.0, "min brightness": 1.0, "min part share": part,
                "cut piece share": piece}
    if arms is not None:
        settings["crossing arms"] = arms
    if reach is not None:
        settings["arm reach"] = reach
    if covered is not None:
        settings["min chromosome pixels"] = covered
    return {**settings, **dict(zip(MEASURES, measures, strict=True))}


def shares(swept) -> tuple[float, float]:
    """(min part share, cut piece share) of a read sweep row."""
    return swept.settings["min part share"], swept.settings["cut piece share"]


def write(path, rows):
    path.write_text(sweep_table(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def gate_file(tmp_path):
    """A sweep of 'the default' with its gate row at 0.35 / 0.5 and another row beside it."""
    return write(tmp_path / "default.md", [row(0.1, 0.5, (90, 90, 9, 60, 70, 60, 70)), row(0.35, 0.5, GATE)])


def test_a_row_qualifies_only_when_it_beats_every_measure_and_lower_hausdorff_wins(tmp_path, gate_file):
    better_everywhere = (94.8, 91.8, 3.1, 68.1, 82.1, 69.1, 76.1)
    higher_hausdorff = (94.8, 91.8, 3.3, 68.1, 82.1, 69.1, 76.1)
    tie_on_masked_touching = (94.8, 91.8, 3.1, 68.1, 82.1, 69.1, 76.0)
    two_lost = (94.6, 91.6, 3.1, 70.0, 85.0, 72.0, 80.0)
    sweep = write(tmp_path / "candidate.md", [
        row(0, 0, better_everywhere), row(0, 0.1, higher_hausdorff), row(0, 0.2, tie_on_masked_touching),
        row(0, 0.3, two_lost),
    ])
    result = tally(read_sweep(sweep), gate_row(read_sweep(gate_file), 0.35, 0.5))
    assert [shares(item) for item in result.qualifiers] == [(0, 0)]
    lost = {shares(item): names for item, names in result.others}
    assert lost == {(0, 0.1): ["Pommier Hausdorff"], (0, 0.2): ["touching masked Dice"],
                    (0, 0.3): ["Pommier Dice", "Pommier IoU"]}
    assert result.losses == {"Pommier Dice": 1, "Pommier IoU": 1, "Pommier Hausdorff": 1, "overlapping raw Dice": 0,
                             "overlapping masked Dice": 0, "touching raw Dice": 0, "touching masked Dice": 1}
    # the best of any row on each measure, Hausdorff the lowest: how near a lost measure came
    assert result.best == {"Pommier Dice": 94.8, "Pommier IoU": 91.8, "Pommier Hausdorff": 3.1,
                           "overlapping raw Dice": 70.0, "overlapping masked Dice": 85.0, "touching raw Dice": 72.0,
                           "touching masked Dice": 80.0}
    # the nearest first: one measure lost before two, then the higher real mean
    assert [shares(item) for item, _ in result.others] == [(0, 0.1), (0, 0.2), (0, 0.3)]


def test_qualifiers_are_ranked_by_the_mean_of_the_real_dice(tmp_path, gate_file):
    sweep = write(tmp_path / "candidate.md", [
        row(0, 0, (99, 99, 1, 69, 83, 70, 77)), row(0, 0.5, (94.8, 91.8, 3.1, 75, 83, 70, 77)),
    ])
    result = tally(read_sweep(sweep), gate_row(read_sweep(gate_file), 0.35, 0.5))
    assert [shares(item) for item in result.qualifiers] == [(0, 0.5), (0, 0)]
    assert result.qualifiers[0].real_mean() == pytest.approx((75 + 83 + 70 + 77) / 4)


def test_the_command_prints_the_count_and_writes_the_report(tmp_path, gate_file, capsys):
    sweep = write(tmp_path / "candidate.md", [row(0, 0, (94.8, 91.8, 3.1, 68.1, 82.1, 69.1, 76.1)),
                                              row(0, 0.1, (94.6, 91.8, 3.1, 68.1, 82.1, 69.1, 76.1))])
    out = tmp_path / "report" / "tally.md"
    assert main([str(sweep), "--gate", str(gate_file), "--gate_shares", "0.35", "0.5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("1 of 2 rows qualify")
    assert "| Pommier Dice | 1 | 94.700 | 94.800 |" in printed
    assert out.read_text(encoding="utf-8") == printed


def test_a_gate_missing_from_its_file_names_the_shares_it_has(tmp_path, gate_file, capsys):
    sweep = write(tmp_path / "candidate.md", [row(0, 0, GATE)])
    assert main([str(sweep), "--gate", str(gate_file), "--gate_shares", "0.2", "0.5"]) == 2
    error = capsys.readouterr().err
    assert ("0 rows at min part share 0.2, cut piece share 0.5, crossing arms 0, arm reach 0, "
            "min chromosome pixels 0") in error
    assert "(0.35, 0.5, 0.0, 0.0, 0.0)" in error


@pytest.mark.parametrize(("text", "message"), [
    ("no table here\n", "no sweep table"),
    ("| a | b |\n| --- | --- |\n| 1 | 2 |\n", "columns min overlap pixels"),
    (None, "table line 3 holds a cell that is not a number"),
    ("| min overlap pixels | min border share | min brightness | min part share | cut piece share | Pommier Dice |\n"
     "| --- | --- | --- | --- | --- | --- |\n| 0 | 0 | 1 | 0 | 0 | 94.7 |\n", "no real-pair measure"),
])
def test_a_file_that_is_no_sweep_table_is_refused_by_name(tmp_path, text, message):
    path = tmp_path / "bad.md"
    if text is None:
        write(path, [row(0, 0, GATE)])
        text = path.read_text(encoding="utf-8").replace("94.700", "n/a")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SweepError, match=message):
        read_sweep(path)


def test_a_missing_sweep_file_is_an_error_not_a_crash(tmp_path, gate_file, capsys):
    assert main([str(tmp_path / "absent.md"), "--gate", str(gate_file), "--gate_shares", "0.35", "0.5"]) == 2
    assert "absent.md: cannot be read" in capsys.readouterr().err


def test_rows_that_differ_in_a_merge_size_are_told_apart_in_the_report(tmp_path, gate_file, capsys):
    merged = {**row(0, 0.5, (94.8, 91.8, 3.1, 68.1, 82.1, 69.1, 76.1)), "min overlap pixels": 5}
    sweep = write(tmp_path / "sizes.md", [row(0, 0.5, (94.8, 91.8, 3.3, 68.1, 82.1, 69.1, 76.1)), merged])
    assert main([str(sweep), "--gate", str(gate_file), "--gate_shares", "0.35", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "| sweep | min overlap pixels | part share | piece share | Pommier Dice |" in printed
    assert "| sizes.md | 5 | 0 | 0.5 | 94.800 |" in printed and "| sizes.md | 0 | 0 | 0.5 | 94.800 |" in printed


def test_settings_that_no_row_varies_stay_out_of_the_report(tmp_path, gate_file, capsys):
    sweep = write(tmp_path / "candidate.md", [row(0, 0, (94.8, 91.8, 3.1, 68.1, 82.1, 69.1, 76.1))])
    assert main([str(sweep), "--gate", str(gate_file), "--gate_shares", "0.35", "0.5"]) == 0
    assert "| sweep | part share | piece share | Pommier Dice |" in capsys.readouterr().out


def test_with_ties_passing_a_row_qualifies_when_no_worse_anywhere_and_better_somewhere(tmp_path, gate_file, capsys):
    ties_touching = (94.8, 91.8, 3.1, 68.1, 82.1, 69.0, 76.0)
    ties_everything = GATE
    worse_on_touching = (94.8, 91.8, 3.1, 68.1, 82.1, 68.9, 76.0)
    sweep = write(tmp_path / "arms.md", [row(0.35, 0.5, ties_touching, 1), row(0.35, 0.5, ties_everything, 0),
                                         row(0.1, 0.5, worse_on_touching, 1)])
    gate = gate_row(read_sweep(gate_file), 0.35, 0.5)
    strict = tally(read_sweep(sweep), gate)
    assert strict.qualifiers == []
    passing = tally(read_sweep(sweep), gate, ties_pass=True)
    assert [(shares(item), item.settings["crossing arms"]) for item in passing.qualifiers] == [((0.35, 0.5), 1)]
    lost = {item.settings["min part share"]: names for item, names in passing.others}
    assert lost == {0.35: ["no measure beaten"], 0.1: ["touching raw Dice"]}
    assert main([str(sweep), "--gate", str(gate_file), "--gate_shares", "0.35", "0.5", "--ties_pass"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("1 of 3 rows qualify (no worse than the gate on all 7 measures and better on at least one)")
    assert "| sweep | crossing arms | part share | piece share |" in printed


def test_the_gate_row_is_told_apart_by_its_crossing_arms_and_older_tables_ran_without(tmp_path, gate_file):
    assert read_sweep(gate_file)[0].settings["crossing arms"] == 0
    assert read_sweep(gate_file)[0].settings["arm reach"] == 0
    both = write(tmp_path / "both.md", [row(0.1, 0.5, GATE, 0), row(0.1, 0.5, (95, 92, 3, 70, 84, 69, 76), 1)])
    assert gate_row(read_sweep(both), 0.1, 0.5).measures["Pommier Dice"] == 94.7
    assert gate_row(read_sweep(both), 0.1, 0.5, crossing_arms=1).measures["Pommier Dice"] == 95


def test_the_gate_row_is_told_apart_by_its_arm_reach(tmp_path, capsys):
    better = (95, 92, 3, 70, 84, 69, 76)
    reaches = write(tmp_path / "reaches.md", [row(0.1, 0.5, GATE, 1, 0), row(0.1, 0.5, better, 1, 3)])
    assert gate_row(read_sweep(reaches), 0.1, 0.5, crossing_arms=1, arm_reach=3).measures["Pommier Dice"] == 95
    assert main([str(reaches), "--gate", str(reaches), "--gate_shares", "0.1", "0.5", "--gate_crossing_arms", "1",
                 "--gate_arm_reach", "3", "--ties_pass"]) == 0
    assert capsys.readouterr().out.startswith("0 of 2 rows qualify")
    assert main([str(reaches), "--gate", str(reaches), "--gate_shares", "0.1", "0.5", "--gate_crossing_arms", "1",
                 "--gate_arm_reach", "5"]) == 2
    assert "0 rows at min part share 0.1, cut piece share 0.5, crossing arms 1, arm reach 5" in capsys.readouterr().err


def test_the_gate_row_is_told_apart_by_its_min_chromosome_pixels(tmp_path, gate_file, capsys):
    assert read_sweep(gate_file)[0].settings["min chromosome pixels"] == 0
    better = (95, 92, 3, 70, 84, 69, 76)
    sizes = write(tmp_path / "sizes.md", [row(0.1, 0.5, GATE, 1, 3, 0), row(0.1, 0.5, better, 1, 3, 5)])
    assert gate_row(read_sweep(sizes), 0.1, 0.5, 1, 3).measures["Pommier Dice"] == 94.7
    assert gate_row(read_sweep(sizes), 0.1, 0.5, 1, 3, chromosome_pixels=5).measures["Pommier Dice"] == 95
    assert main([str(sizes), "--gate", str(sizes), "--gate_shares", "0.1", "0.5", "--gate_crossing_arms", "1",
                 "--gate_arm_reach", "3", "--gate_chromosome_pixels", "5", "--ties_pass"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("0 of 2 rows qualify")
    assert "| sweep | min chromosome pixels | part share | piece share |" in printed
