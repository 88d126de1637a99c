"""Where a model's errors on the real pairs lie: a diagnostic for choosing the next lever.

    python -m amfl.real_errors [--model space/model] [--split validation] [--out FILE]

Every truth chromosome pixel of a pair (:mod:`amfl.data.real_pairs`) ends in one outcome:
right, missed (called background), misnamed (called the other chromosome), overlap painted
(called overlap where the truth has one chromosome) or overlap missed (called one chromosome
where the truth has both). Background called chromosome is counted beside them. Shares are
of all truth chromosome pixels of a kind of pair and input.

Four what-ifs follow, as mean Dice per pair. "No stray overlap": each overlap part (4-connected)
that lies over no truth overlap pixel merged into the chromosome bordering it most, as a
failed stray-overlap test merges it (:mod:`amfl.small_overlaps`), the ceiling of any such test:
on the touching pairs, where the truth has no overlap, one painted overlap pixel costs the
pair a quarter of its mean Dice. Then three naming what-ifs. "Best naming": each pair's labels 1 and
2 swapped wherever that scores better, the ceiling of any rule that names whole
chromosomes. "Best piece naming": each 8-connected piece of label 1 or of label 2 given the
name most of its truth chromosome pixels have, the ceiling of any rule that renames whole
pieces (such as :mod:`amfl.piece_names`). "Named by area": the truth's own rule applied to the
prediction, each connected part with overlap named so that label 1 is the smaller (overlap
counted in both; :func:`amfl.naming.name_by_area`).

With ``--against OTHER`` a second table compares the two models pair by pair: each one's mean
Dice per kind and input, the mean difference and its 95 % interval over resampled cases
(:mod:`amfl.case_bootstrap`), so that a gate can tell a gain from the noise of a few cases.

The default split is validation, so that a lever is chosen without reading the test pairs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from amfl.case_bootstrap import case_bootstrap
from amfl.connectivity import EIGHT_CONNECTED
from amfl.data.adir import CASE_SPLIT_NAMES, list_metaphases
from amfl.data.real_pairs import PAIR_KINDS, extract_real_pairs
from amfl.data.sources import SourceError
from amfl.markdown import records_table, show_and_save
from amfl.metrics import score_batch
from amfl.naming import FIRST, OVERLAP, SECOND, name_by_area, swap_names
from amfl.real_scoring import REAL_INPUTS, RealPredictions, predict_real_pairs
from amfl.segmentation import Segmenter, limit_threads
from amfl.small_overlaps import merge_overlap_parts

#: Pixel outcomes, in the order of the table; all but the last are shares of truth chromosome pixels.
OUTCOMES = ("right", "missed", "misnamed", "overlap painted", "overlap missed", "background painted")


def pixel_outcomes(predicted: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """Pixel counts of each outcome of :data:`OUTCOMES`, and ``chromosome`` (truth > 0)."""
    chromosome = truth > 0
    single = (truth == FIRST) | (truth == SECOND)
    named = (predicted == FIRST) | (predicted == SECOND)
    return {
        "right": int((chromosome & (predicted == truth)).sum()),
        "missed": int((chromosome & (predicted == 0)).sum()),
        "misnamed": int((single & named & (predicted != truth)).sum()),
        "overlap painted": int((single & (predicted == OVERLAP)).sum()),
        "overlap missed": int(((truth == OVERLAP) & named).sum()),
        "background painted": int(((truth == 0) & (predicted > 0)).sum()),
        "chromosome": int(chromosome.sum()),
    }


def name_pieces_by_truth(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``predicted`` with each 8-connected piece of label 1 and of label 2 renamed to the
    chromosome most of its truth chromosome pixels belong to (1 on a tie; pieces over
    background and overlap alone keep their name)."""
    named = predicted.copy()
    for name in (FIRST, SECOND):
        pieces, count = ndimage.label(predicted == name, structure=EIGHT_CONNECTED)
        firsts = np.bincount(pieces[truth == FIRST], minlength=count + 1)
        seconds = np.bincount(pieces[truth == SECOND], minlength=count + 1)
        over_chromosomes = firsts + seconds
        over_chromosomes[0] = 0  # off every piece
        for piece in np.flatnonzero(over_chromosomes):
            named[pieces == piece] = FIRST if firsts[piece] >= seconds[piece] else SECOND
    return named


def merge_overlap_off_truth(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``predicted`` with every overlap part over no truth overlap pixel merged."""
    return merge_overlap_parts(predicted, lambda part: not (truth[part.box][part.inside] == OVERLAP).any())


def _dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    return score_batch(predicted[None], truth[None]).means["dice"]


def _indices_of_kind(predictions: RealPredictions, kind: str) -> list[int]:
    return [index for index, pair in enumerate(predictions.pairs) if pair.cluster.kind == kind]


def error_rows(predictions: RealPredictions) -> list[dict[str, object]]:
    """One row per kind of pair and input: pairs, outcome shares (percent), Dice as
    predicted, without stray overlap, with the best naming and named by area."""
    rows = []
    for kind in PAIR_KINDS:
        chosen = _indices_of_kind(predictions, kind)
        for source in REAL_INPUTS:
            pairs = [(predictions.labels[source][index], predictions.pairs[index].labels) for index in chosen]
            if not pairs:
                continue
            counts = [pixel_outcomes(predicted, truth) for predicted, truth in pairs]
            total = sum(count["chromosome"] for count in counts)
            rows.append({
                "kind": kind, "input": source, "pairs": len(pairs),
                **{name: 100 * sum(count[name] for count in counts) / total for name in OUTCOMES},
                "dice": float(np.mean([_dice(p, t) for p, t in pairs])),
                "dice no stray overlap": float(np.mean([_dice(merge_overlap_off_truth(p, t), t) for p, t in pairs])),
                "dice best naming": float(np.mean([max(_dice(p, t), _dice(swap_names(p), t)) for p, t in pairs])),
                "dice best piece naming": float(np.mean([_dice(name_pieces_by_truth(p, t), t) for p, t in pairs])),
                "dice named by area": float(np.mean([_dice(name_by_area(p), t) for p, t in pairs])),
            })
    return rows


def comparison_rows(
    predictions: RealPredictions, against: RealPredictions, draws: int = 2000, seed: int = 0,
) -> list[dict[str, object]]:
    """One row per kind of pair and input: cases, pairs, both models' mean Dice, and the mean
    per-pair difference (``predictions`` minus ``against``) with its case-bootstrap interval."""
    if [id(pair) for pair in predictions.pairs] != [id(pair) for pair in against.pairs]:
        raise ValueError("the two models must be scored on the same pairs")
    dice = {source: (predictions.dice(source), against.dice(source)) for source in REAL_INPUTS}
    rows = []
    for kind in PAIR_KINDS:
        chosen = _indices_of_kind(predictions, kind)
        if not chosen:
            continue
        cases = [predictions.pairs[index].cluster.case for index in chosen]
        for source in REAL_INPUTS:
            ours, theirs = dice[source][0][chosen], dice[source][1][chosen]
            interval = case_bootstrap(ours - theirs, cases, draws, seed)
            rows.append({
                "kind": kind, "input": source, "cases": len(set(cases)), "pairs": len(chosen),
                "dice": float(ours.mean()), "dice against": float(theirs.mean()),
                "difference": interval.mean, "95% low": interval.low, "95% high": interval.high,
            })
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="space/model", help="model folder or Hub id (default space/model)")
    parser.add_argument("--split", default="validation", choices=CASE_SPLIT_NAMES, help="case split of the pairs")
    parser.add_argument("--adir", type=Path, default=None, help="ADIR metaphase folder (default $AMFL_ADIR or the shared data)")
    parser.add_argument("--against", default=None, help="a second model (folder or Hub id): compare the two pair by pair")
    parser.add_argument("--draws", type=int, default=2000, help="case resamplings for the comparison's intervals")
    parser.add_argument("--out", type=Path, default=None, help="also write the tables to this markdown file")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default $AMFL_THREADS or 1)")
    args = parser.parse_args(argv)
    if args.draws < 1:
        parser.error(f"--draws must be 1 or more; got {args.draws}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit_threads(args.threads)
    try:
        segmenters = {name: Segmenter.from_pretrained(name) for name in (args.model, args.against) if name is not None}
        pairs = extract_real_pairs(list_metaphases(args.adir), progress=False).select(split=args.split)
    except (SourceError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    predictions = predict_real_pairs(args.model, segmenters[args.model], pairs)
    table = records_table(error_rows(predictions))
    if args.against is not None:
        against = predict_real_pairs(args.against, segmenters[args.against], pairs)
        table += (f"\n\n{args.model} against {args.against}: mean Dice difference per pair, 95 % interval "
                  f"over {args.draws} case resamplings\n\n") + records_table(comparison_rows(predictions, against, args.draws))
    show_and_save(table, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
