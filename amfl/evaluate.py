"""Score trained model folders on the test split and write the paper's tables and figures.

    python -m amfl.evaluate runs/amfl/model runs/unet/model --out results/

Writes to ``--out``: Table II (eight scores), Table III (per-class IoU), Table IV
(parameters, CPU and, on a GPU, GPU milliseconds per 128 x 128 image), Tables I and V (the
generator, loss and GAN ablations, from each folder's training_config.json), confusion matrices (Fig. 5),
training curves (from the run's log.jsonl), predictions with difference images (Fig. 6):
markdown, CSV and PNG, plus evaluation.json with every number and the command. Our rows
stand beside the paper's, which are always labelled as the paper's. Beside the test split,
``real_pairs.md`` scores every model on the real overlapping and touching pairs of the ADIR
metaphases (raw and masked inputs, strict naming) with a trivial floor (``amfl.real_scoring``).

Each folder is scored with its own preprocessing: the ``preprocessor_config.json`` saved beside
its weights (``amfl.hub.load_preprocessor``; folders saved before it existed get the defaults
they were trained with), so the image pad value, background step and padded size are the
model's, as in training and in the app. There is no ``--image_pad_value``. Scores are those
training reports (``amfl.scoring``), on the padded label maps; figures show each sample at its
own size. ``--precision bfloat16`` scores the networks computing in bfloat16 on both test
sets, as the app and the command line do when asked for it (``amfl.models.precision``).
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader

import amfl.hub
from amfl import figures, paper_tables
from amfl.data.adir import CASE_SPLIT_NAMES, list_metaphases
from amfl.data.dataset import load_pairs
from amfl.data.pairs import OverlapPairs
from amfl.data.protocol import split_pairs
from amfl.data.real_pairs import extract_real_pairs
from amfl.data.sources import SourceError
from amfl.markdown import markdown_table
from amfl.metrics import METRIC_NAMES, BatchScores, score_batch
from amfl.models import MODELS, NestedUNet, create_model
from amfl.models.precision import PRECISIONS, in_precision
from amfl.preprocessing import Preprocessor, centred_padding
from amfl.evaluation_cards import card_evaluations
from amfl.hub import write_model_card
from amfl.real_scoring import RealPredictions, floor_predictions, predict_real_pairs, score_predictions
from amfl.scoring import predict_labels
from amfl.segmentation import Segmenter
from amfl.timing import median_latency_ms, median_ms
from amfl.training.config import CONFIG_FILE as TRAINING_CONFIG_FILE
from amfl.training.data import SplitTensors, evaluation_set
from amfl.training.loop import LOG_FILE

#: Samples drawn in the Fig. 6 figure.
FIGURE_SAMPLES = 6
HEADERS = {
    "acc": "Acc", "dice": "Dice", "iou": "IoU", "recall": "Recall", "precision": "Precision",
    "fnr": "FNR", "fpr": "FPR", "hausdorff": "Hausdorff",
}


@dataclass(frozen=True)
class ModelResult:
    """One evaluated folder: what it is, how it was trained and prepares its inputs, how it
    scores and how fast it is. ``predictions`` (N, H, W) are cropped back to the samples' size."""

    name: str
    folder: Path
    training: dict[str, Any]
    preprocessor: Preprocessor
    scores: BatchScores
    predictions: np.ndarray
    parameters: int
    cpu_ms: float
    gpu_ms: float | None

    def row(self) -> dict[str, Any]:
        return {
            "name": self.name, "folder": str(self.folder), "parameters": self.parameters,
            "cpu_ms": self.cpu_ms, "gpu_ms": self.gpu_ms, "training": self.training,
            "preprocessor": self.preprocessor.to_dict(),
            "images": len(self.predictions), **self.scores.summary(),
        }


def load_test_pairs(h5: Path | None, seed: int, max_samples: int | None) -> OverlapPairs:
    """The scored test samples (with overlap) of the paper's split, as loaded: each model
    prepares them with its own preprocessing."""
    return split_pairs(load_pairs(h5, progress=False), seed=seed).test_scored.subset(slice(max_samples))


def evaluate_folder(
    folder: Path, name: str, pairs: OverlapPairs, accelerator: Accelerator, timing_runs: int, batch_size: int,
    precision: str = PRECISIONS[0],
) -> ModelResult:
    """Score one model folder on ``pairs`` prepared by the folder's preprocessor, and time it,
    with its network computing in ``precision`` (:mod:`amfl.models.precision`)."""
    loaded = amfl.hub.from_pretrained(folder, map_location=str(accelerator.device))
    preprocessor = amfl.hub.load_preprocessor(folder, loaded)
    model = in_precision(loaded, precision)
    test = SplitTensors.from_pairs(pairs, preprocessor)
    loader = accelerator.prepare(DataLoader(evaluation_set(test), batch_size=batch_size))
    predicted, true = predict_labels(accelerator, model, loader, f"scoring {name}", output=preprocessor)
    crop = centred_padding(pairs.images.shape[-2:], predicted.shape[-2:]).crop
    training_path = folder / TRAINING_CONFIG_FILE
    training = json.loads(training_path.read_text(encoding="utf-8")) if training_path.is_file() else {}
    on_gpu = accelerator.device.type == "cuda"
    gpu_ms = median_latency_ms(model, runs=timing_runs, device=accelerator.device) if on_gpu else None
    cpu_ms = median_latency_ms(model, runs=timing_runs, device="cpu")
    return ModelResult(
        name, folder, training, preprocessor, score_batch(predicted, true), crop(predicted),
        sum(parameter.numel() for parameter in model.parameters()), cpu_ms, gpu_ms,
    )


def write_tables(results: list[ModelResult], out: Path, timing_rows: list[list[str]]) -> list[Path]:
    """Tables I-V as markdown and CSV (I and V when a run fits them); returns the files written.
    ``timing_rows`` (from :func:`authors_way_timing`) join Table IV."""
    tables = {
        "table2": _table_ii(results),
        "table3": _table_iii(results),
        "table4": _table_iv(results, timing_rows),
    }
    for stem, table in (("table1", _table_i(results)), ("table5", _table_v(results))):
        if table[1]:
            tables[stem] = table
    written = []
    for stem, (header, rows) in tables.items():
        written.append(_write_markdown(out / f"{stem}.md", header, rows))
        written.append(_write_csv(out / f"{stem}.csv", header, rows))
    return written


def _scores(values: dict[str, float]) -> list[str]:
    return [f"{values[name]:.4f}" for name in METRIC_NAMES]


def _table_ii(results: list[ModelResult]) -> tuple[list[str], list[list[str]]]:
    header = ["Model", "Source", *(HEADERS[name] for name in METRIC_NAMES)]
    rows = [[result.name, "ours", *_scores(result.scores.means)] for result in results]
    rows += [[name, "paper, Table II", *_scores(values)] for name, values in paper_tables.TABLE_II.items()]
    return header, rows


def _table_iii(results: list[ModelResult]) -> tuple[list[str], list[list[str]]]:
    header = ["Model", "Source", "IoU class 1", "IoU class 2", "IoU class 3", "Acc"]
    keys = ("iou_class_1", "iou_class_2", "iou_class_3", "acc")
    rows = [[r.name, "ours", *(f"{r.scores.summary()[key]:.2f}" for key in keys)] for r in results]
    rows.append(["AMFL", "paper, Table III", *(f"{paper_tables.TABLE_III_AMFL[key]:.2f}" for key in keys)])
    return header, rows


def authors_way_timing(runs: int) -> list[list[str]]:
    """Table IV rows timing the paper-size NestedUNet two ways in the same run, on the CPU:
    as the authors' code runs it (a bare eager float32 forward pass, batch 1) and through
    this project's whole per-image path (``amfl.segmentation.Segmenter``: background,
    polarity, padding, scaling, prediction, argmax, crop), so their ratio is meaningful."""
    model = create_model("amfl-paper").eval()
    parameters = f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}"
    image = np.random.default_rng(0).uniform(0, 255, (128, 128)).astype(np.float32)
    segmenter = Segmenter(model, "amfl-paper (untrained)")
    rows = []
    for label, milliseconds in (
        ("authors' way: eager float32 forward, batch 1", median_latency_ms(model, runs=runs)),
        ("ours: amfl.segmentation per-image path", median_ms(lambda: segmenter.segment_grey(image), runs)),
    ):
        rows.append(["NestedUNet (paper size)", label, parameters, f"{milliseconds:.1f}", "-"])
    return rows


def _table_iv(results: list[ModelResult], timing_rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    header = ["Model", "Source", "Params (M)", "CPU ms", "GPU ms"]
    rows = [
        [r.name, "ours (this machine)", f"{r.parameters / 1e6:.2f}", f"{r.cpu_ms:.1f}",
         "not measured (no GPU)" if r.gpu_ms is None else f"{r.gpu_ms:.2f}"]
        for r in results
    ]
    rows += timing_rows
    rows += [
        [name, "paper, Table IV (Xeon E5-2680 v4 / Tesla P40)", f"{params:.2f}", f"{cpu}", f"{gpu}"]
        for name, (params, gpu, cpu) in paper_tables.TABLE_IV.items()
    ]
    return header, rows


def _training_row(result: ModelResult) -> tuple[str | None, str | None, bool | None]:
    """(paper name of the generator, loss, GAN) from the folder's training_config.json."""
    spec = MODELS.get(str(result.training.get("model", "")))
    generator = "NestedUNet" if spec is not None and spec.model_class is NestedUNet else getattr(spec, "paper_name", None)
    return generator, result.training.get("loss"), result.training.get("gan")


def _table_i(results: list[ModelResult]) -> tuple[list[str], list[list[str]]]:
    """AMFL (GAN + Lovasz-Softmax) rows by generator, beside the paper's Table I."""
    header = ["Model", "Generator", "Source", *(HEADERS[name] for name in METRIC_NAMES)]
    rows = []
    for result in results:
        generator, loss, gan = _training_row(result)
        if gan and loss == "lovasz" and generator in paper_tables.TABLE_I:
            rows.append([result.name, generator, "ours", *_scores(result.scores.means)])
            rows.append([result.name, generator, "paper, Table I", *_scores(paper_tables.TABLE_I[generator])])
    return header, rows


def _table_v(results: list[ModelResult]) -> tuple[list[str], list[list[str]]]:
    """Rows for every evaluated NestedUNet with a known loss and GAN setting, beside the paper's."""
    header = ["Model", "Loss", "GAN", "Source", *(HEADERS[name] for name in METRIC_NAMES)]
    rows = []
    for result in results:
        generator, loss, gan = _training_row(result)
        if generator != "NestedUNet" or (loss, gan) not in paper_tables.TABLE_V:
            continue
        mark = "yes" if gan else "no"
        rows.append([result.name, loss, mark, "ours", *_scores(result.scores.means)])
        rows.append([result.name, loss, mark, "paper, Table V", *_scores(paper_tables.TABLE_V[loss, gan])])
    return header, rows


def write_figures(results: list[ModelResult], pairs: OverlapPairs, out: Path) -> list[Path]:
    """Confusion matrices and training curves per model, and Fig. 6 on the first samples as
    loaded (the models may pad them differently; their predictions are cropped back)."""
    written = []
    for result in results:
        written.append(figures.plot_confusion(
            result.scores.confusion_percent, f"{result.name}: % of each true class", out / f"confusion_{_slug(result.name)}.png"
        ))
        log = result.folder.parent / LOG_FILE
        if log.is_file():
            written.append(figures.plot_training_curves(log, result.name, out / f"curves_{_slug(result.name)}.png"))
    count = min(FIGURE_SAMPLES, len(pairs))
    predictions = {result.name: result.predictions[:count] for result in results}
    written.append(figures.plot_predictions(
        pairs.images[:count], pairs.labels[:count], predictions, out / "fig6_predictions.png"
    ))
    return written


def _slug(name: str) -> str:
    return "".join(character if character.isalnum() or character in "-_" else "_" for character in name)


def _write_markdown(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text(markdown_table(header, rows) + "\n", encoding="utf-8")
    return path


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help="model folders (config.json + model.safetensors)")
    parser.add_argument("--names", nargs="+", default=None, help="row names, one per folder (default: folder names)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="folder for tables and figures")
    parser.add_argument("--h5", type=Path, default=None, help="an original .h5 instead of the rebuilt set")
    parser.add_argument("--seed", type=int, default=123, help="split seed (default: the paper's 123)")
    parser.add_argument("--max_samples", type=int, default=None, help="score at most this many test samples")
    parser.add_argument("--timing_runs", type=int, default=50, help="runs per latency median")
    parser.add_argument("--batch_size", type=int, default=64, help="images per scoring step")
    parser.add_argument("--real_pairs", choices=(*CASE_SPLIT_NAMES, "none"), default="test",
                        help="also score the real ADIR pairs of this case split (amfl.data.real_pairs)")
    parser.add_argument("--adir", type=Path, default=None, help="folder of the ADIR metaphases (default: $AMFL_ADIR or ../shared/data/adir-mfish)")
    parser.add_argument("--card", action="store_true",
                        help="rewrite each folder's README.md card with the scores measured here (test split and real pairs)")
    parser.add_argument("--precision", choices=PRECISIONS, default=PRECISIONS[0],
                        help="number format the networks compute in (bfloat16: faster on CPUs with native support)")
    args = parser.parse_args(argv)
    if args.card and args.precision != PRECISIONS[0]:
        parser.error(f"--card records a model's {PRECISIONS[0]} scores; score --precision {args.precision} without --card")
    if args.names is not None and len(args.names) != len(args.models):
        parser.error(f"--names gives {len(args.names)} names for {len(args.models)} model folders")
    return args


def default_name(folder: Path) -> str:
    """A folder's row name: its own name, or its run's for the trainer's ``<run>/model``."""
    return folder.name if folder.name != "model" else folder.parent.name


def evaluate_models(
    folders: Sequence[Path],
    names: Sequence[str] | None,
    out: Path,
    *,
    command: str,
    h5: Path | None = None,
    seed: int = 123,
    max_samples: int | None = None,
    timing_runs: int = 50,
    batch_size: int = 64,
    real_split: str = "test",
    adir: Path | None = None,
    card: bool = False,
    precision: str = PRECISIONS[0],
) -> list[ModelResult]:
    """Score and time every folder, write the tables, figures and evaluation.json to ``out``.

    ``names`` are the row names (default: :func:`default_name`); ``command`` is recorded as
    what produced the numbers. ``real_split`` ("none" to skip) picks the real ADIR pairs
    scored beside the test split (``real_pairs.md``); without the ADIR folder they are skipped
    with a note; the pairs each model fails worst on are drawn (``real_failures_<name>.png``).
    ``card`` rewrites each folder's model card with what was measured. ``precision``: the
    number format every network computes in, on both test sets. Raises
    FileNotFoundError or ValueError for a folder or data set that cannot be loaded.
    """
    names = names or [default_name(folder) for folder in folders]
    pairs = load_test_pairs(h5, seed, max_samples)
    accelerator = Accelerator()
    results = [
        evaluate_folder(Path(folder), name, pairs, accelerator, timing_runs, batch_size, precision)
        for folder, name in zip(folders, names, strict=True)
    ]
    out.mkdir(parents=True, exist_ok=True)
    timing_rows = authors_way_timing(timing_runs)
    written = write_tables(results, out, timing_rows) + write_figures(results, pairs, out)
    real = _predict_real_pairs(results, real_split, adir, precision)
    real_rows = [row for predictions in real for row in score_predictions(predictions)]
    for predictions in real[1:]:
        written.append(figures.plot_real_failures(predictions, out / f"real_failures_{_slug(predictions.model)}.png"))
    if card:
        for result in results:
            rows = [row for row in real_rows if row.model == result.name]
            written.append(write_model_card(result.folder, card_evaluations(result.scores.summary(), rows, command, real_split)))
    if real_rows:
        header = ["Model", "Pairs", "Input", "Images", *(HEADERS[name] for name in METRIC_NAMES)]
        table = [[row.model, row.kind, row.input, str(row.images), *_scores(row.means)] for row in real_rows]
        written += [_write_markdown(out / "real_pairs.md", header, table), _write_csv(out / "real_pairs.csv", header, table)]
        print(markdown_table(header, table))
    record = {
        "command": command,
        "device": torch.cuda.get_device_name() if accelerator.device.type == "cuda" else "cpu",
        "cpu_threads": torch.get_num_threads(),
        "precision": precision,
        "test_images": len(pairs),
        "models": [result.row() for result in results],
        "table_iv_authors_way": timing_rows,
        "real_pairs": {"split": real_split, "rows": [row.row() for row in real_rows]},
    }
    written.append(out / "evaluation.json")
    written[-1].write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    for result in results:
        means = ", ".join(f"{name} {value:.4f}" for name, value in result.scores.means.items())
        print(f"{result.name}: {means}; {result.parameters / 1e6:.2f} M parameters, {result.cpu_ms:.1f} ms on CPU")
    print("wrote " + ", ".join(str(path) for path in written))
    return results


def _predict_real_pairs(results: list[ModelResult], split: str, adir: Path | None, precision: str) -> list[RealPredictions]:
    """The floor, then every model, on the real pairs of ``split``; none when skipped."""
    if split == "none":
        return []
    try:
        real = extract_real_pairs(list_metaphases(adir), progress=False).select(split=split)
    except SourceError as error:
        print(f"note: real pairs not scored: {error}", file=sys.stderr)
        return []
    return [floor_predictions(real)] + [predict_real_pairs(result.name, Segmenter.from_pretrained(result.folder, precision), real) for result in results]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m amfl.evaluate " + shlex.join(argv if argv is not None else sys.argv[1:])
    try:
        evaluate_models(
            args.models, args.names, args.out, command=command, h5=args.h5, seed=args.seed,
            max_samples=args.max_samples, timing_runs=args.timing_runs, batch_size=args.batch_size,
            real_split=args.real_pairs, adir=args.adir, card=args.card, precision=args.precision,
        )
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
