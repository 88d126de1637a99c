"""The training-curve figure of amfl.evaluate reads every log the trainer writes: fine-tunes
(epoch 0 trains nothing), real validation sets, and the benchmark's Dice of
--benchmark_validation, also when a run was resumed with that flag part-way."""

import json

from amfl.figures import dice_curves, loss_curves, plot_training_curves

BENCHMARK = {"overlapping_raw": 70.0, "overlapping_masked": 80.0, "touching_raw": 65.0, "touching_masked": 75.0}


def record(epoch: int, selection: float, benchmark: bool = False, real: float | None = None) -> dict:
    """One line of log.jsonl: a fine-tune's epoch 0 has no losses."""
    line = {"epoch": epoch, "loss": {} if epoch == 0 else {"generator": 0.5 / epoch}, "validation": {"dice": 90.0 + epoch},
            "selection_dice": selection, "best_epoch": 0}
    if real is not None:
        line["validation_real"] = {"dice": real}
    if benchmark:
        line["validation_benchmark"] = {name: dice + epoch for name, dice in BENCHMARK.items()}
    return line


def test_a_benchmark_logged_from_a_later_epoch_is_plotted_where_it_is_logged():
    records = [record(0, 80.0, real=70.0), record(1, 81.0, real=72.0), record(2, 82.0, benchmark=True, real=74.0)]
    curves = dice_curves(records)
    assert curves["validation"] == ([0, 1, 2], [90.0, 91.0, 92.0])
    assert curves["validation real"] == ([0, 1, 2], [70.0, 72.0, 74.0])
    assert curves["validation benchmark touching raw"] == ([2], [67.0])
    assert {label for label in curves if "benchmark" in label} == {f"validation benchmark {name.replace('_', ' ')}" for name in BENCHMARK}
    assert curves["selection"] == ([0, 1, 2], [80.0, 81.0, 82.0])


def test_the_selection_curve_is_left_out_only_when_it_is_the_one_validation_dice():
    alone = [record(epoch, 90.0 + epoch) for epoch in (1, 2)]
    assert set(dice_curves(alone)) == {"validation"}
    on_benchmark = [record(epoch, 60.0 + epoch, benchmark=True) for epoch in (1, 2)]
    assert dice_curves(on_benchmark)["selection"] == ([1, 2], [61.0, 62.0])


def test_a_fine_tunes_epoch_0_has_no_loss_point():
    assert loss_curves([record(0, 80.0), record(1, 81.0), record(2, 82.0)]) == {"generator": ([1, 2], [0.5, 0.25])}


def test_the_figure_is_drawn_for_a_fine_tune_logged_with_the_benchmark(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(record(epoch, 80.0 + epoch, benchmark=True)) + "\n" for epoch in (0, 1)))
    path = plot_training_curves(log, "run", tmp_path / "curves.png")
    assert path.is_file() and path.stat().st_size > 0
