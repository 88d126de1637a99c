"""Fit the part counter (:mod:`amfl.part_counter`) on the ADIR training cases.

    python -m amfl.train_part_counter [--adir DIR] [--out amfl/weights/part_counter]

Each part that :func:`amfl.metaphase_candidates.find_candidates` finds in a training metaphase is one
sample: its features (:mod:`amfl.metaphase_features`) and, as truth, how many of the
expert's chromosomes have most of their pixels in it (:func:`amfl.metaphase_truth.per_region`;
0 for a piece of a chromosome cut in two or an object the expert did not label). Only the
training split is read (``split_of_case(case) == "train"``); validation and test cases stay
unseen. Needs scikit-learn (in ``requirements-dev.txt``); the fitted trees are
saved as arrays, so using the counter does not.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from amfl.data.adir import default_adir_dir, list_metaphases, split_of_case
from amfl.data.sources import SourceError
from amfl.metaphase_candidates import find_candidates
from amfl.metaphase_truth import expert_chromosomes, per_region
from amfl.metaphase_features import FEATURES, part_features, part_map
from amfl.part_counter import BUNDLED_PART_COUNTER, PartCounter, PartCounterConfig

#: Classes: 0, 1, 2, 3 and "4 or more" chromosomes in a part.
CLASSES = (0, 1, 2, 3, 4)
#: The boosting settings (small trees, slow learning, for a table of a few thousand rows);
#: ``--cross_validate`` measures them on the training cases.
N_ESTIMATORS, MAX_DEPTH, LEARNING_RATE, SUBSAMPLE, SEED = 150, 3, 0.05, 0.8, 0
CV_FOLDS = 6


def training_table(folder: Path | str | None = None, quiet: bool = False) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(features, chromosomes per part, metaphase of each part) over the training metaphases."""
    metaphases = [m for m in list_metaphases(folder) if split_of_case(m.case) == "train"]
    rows, truths, names = [], [], []
    for metaphase in tqdm(metaphases, desc="training metaphases", unit="metaphase", disable=quiet):
        dapi, labels = metaphase.read()
        found = find_candidates(dapi)
        if not found.parts:
            continue
        truth = per_region(part_map(found.parts, dapi.shape), expert_chromosomes(labels))[1:]
        rows.append(part_features(found.parts, found.objects, found.image, found.level, found.width))
        truths.append(np.minimum(truth, CLASSES[-1]))
        names.extend([metaphase.name] * len(truth))
    if not rows:
        raise ValueError(f"no metaphase of the training split with chromosomes in {folder or default_adir_dir()}")
    return np.concatenate(rows), np.concatenate(truths), names


def fit(features: np.ndarray, truth: np.ndarray, metaphases: list[str], command: str = "") -> PartCounter:
    """Boosted trees on (features, truth), copied into a :class:`PartCounter`; ``metaphases``
    names the metaphase of each row."""
    from sklearn.ensemble import GradientBoostingClassifier

    missing = sorted(set(CLASSES) - set(truth.tolist()))
    if missing:
        raise ValueError(f"the training parts hold no example of class(es) {missing}; every class {list(CLASSES)} needs one")
    model = GradientBoostingClassifier(
        n_estimators=N_ESTIMATORS, max_depth=MAX_DEPTH, learning_rate=LEARNING_RATE, subsample=SUBSAMPLE, random_state=SEED,
    ).fit(features, truth)
    config = PartCounterConfig(
        FEATURES, CLASSES, LEARNING_RATE, N_ESTIMATORS, MAX_DEPTH, SUBSAMPLE, SEED, command,
        {str(k): int(v) for k, v in sorted(Counter(truth.tolist()).items())}, len(set(metaphases)),
        min(Counter(metaphases).values()),
    )
    counter = PartCounter.from_gradient_boosting(model, config, features)
    if not np.allclose(counter.raw_scores(features), model.decision_function(features), atol=1e-9):
        raise RuntimeError("the copied trees do not reproduce scikit-learn's scores; the tree export is wrong")
    return counter


def cross_validate(
    features: np.ndarray, truth: np.ndarray, names: list[str], folder: Path | str | None = None, quiet: bool = False,
) -> dict[str, float]:
    """Case-grouped cross-validation on the training table: each fold's cases are counted by a
    counter fitted on the other folds. Returns count scores per metaphase (the sum over its
    parts) against the ISCN count and against the expert's count of the same parts."""
    by_name = {m.name: m for m in list_metaphases(folder, verify=False)}
    cases = np.array([by_name[name].case for name in names])
    predicted = np.zeros(len(truth), int)
    shuffled = np.random.default_rng(SEED).permutation(np.unique(cases))
    for held_out in tqdm(np.array_split(shuffled, CV_FOLDS), desc="folds", unit="fold", disable=quiet):
        test = np.isin(cases, held_out)
        predicted[test] = fit(features[~test], truth[~test], [n for n, t in zip(names, test, strict=True) if not t]).counts(features[test])[0]
    iscn_errors, expert_errors = [], []
    for name in sorted(set(names)):
        rows = np.array([n == name for n in names])
        iscn_errors.append(int(predicted[rows].sum()) - by_name[name].expected_count)
        expert_errors.append(int(predicted[rows].sum() - truth[rows].sum()))
    iscn, expert = np.array(iscn_errors), np.array(expert_errors)
    return {
        "metaphases": len(iscn), "exact_vs_iscn_%": round(100 * float((iscn == 0).mean()), 1),
        "mae_vs_iscn": round(float(np.abs(iscn).mean()), 2), "exact_vs_parts_truth_%": round(100 * float((expert == 0).mean()), 1),
        "mae_vs_parts_truth": round(float(np.abs(expert).mean()), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adir", type=Path, default=None, help=f"the ADIR metaphases (default {default_adir_dir()})")
    parser.add_argument("--out", type=Path, default=BUNDLED_PART_COUNTER, help="folder for model.safetensors and config.json")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--cross_validate", action="store_true", help=f"also print {CV_FOLDS}-fold case-grouped cross-validation scores")
    args = parser.parse_args(argv)
    try:
        features, truth, names = training_table(args.adir, args.quiet)
    except (SourceError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.cross_validate:
        print(f"cross-validation on the training cases ({CV_FOLDS} folds of cases): {cross_validate(features, truth, names, args.adir, args.quiet)}")
    command = "python -m amfl.train_part_counter " + shlex.join(argv if argv is not None else sys.argv[1:])
    counter = fit(features, truth, names, command.strip())
    counter.save(args.out)
    accuracy = float((counter.counts(features)[0] == truth).mean())
    print(f"fitted on {len(truth)} parts of {len(set(names))} training metaphases; parts per class {counter.config.parts_per_class}; "
          f"training accuracy {100 * accuracy:.1f} %; saved to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
