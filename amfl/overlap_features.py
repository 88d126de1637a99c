"""What the overlap parts a model paints look like, over a truth crossing and over none: a
diagnostic for the next stray-overlap test (:mod:`amfl.small_overlaps`).

    python -m amfl.overlap_features [--model space/model] [--split train] [--pommier 600] [--out FILE]

On real touching pairs every overlap part is a stray, and each one costs its pair a quarter of
the pair's mean Dice (:mod:`amfl.real_errors`, column "dice no stray overlap"). A test may merge
only what it can tell from a crossing, on Pommier pairs as on real ones. For every overlap part
of the model's output (its saved output steps applied) this counts its pixels, its thickness
(the largest distance from a part pixel to the nearest pixel outside it: a sliver along a seam is
thin) and how many separate stretches of each chromosome border it (a chromosome that runs
through a crossing borders it twice, one that only meets it once). Parts are grouped by source,
kind of pair, input and whether they lie over any truth overlap pixel.

The default split is train, so that a test designed from this table is then judged on the
validation pairs; the Pommier crops are the first ``--pommier`` of the training split.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from amfl.connectivity import EIGHT_CONNECTED
from amfl.data.adir import CASE_SPLIT_NAMES, list_metaphases
from amfl.data.dataset import load_pairs
from amfl.data.protocol import split_pairs
from amfl.data.real_pairs import PAIR_KINDS, extract_real_pairs
from amfl.data.sources import SourceError
from amfl.markdown import records_table, show_and_save
from amfl.naming import FIRST, OVERLAP, SECOND
from amfl.real_scoring import REAL_INPUTS
from amfl.segmentation import Segmenter, limit_threads
from amfl.small_overlaps import OverlapPart, overlap_parts

#: Quantiles of the thickness reported per group, percent.
THICKNESS_QUANTILES = (10, 50, 90)


@dataclass(frozen=True)
class PartFeatures:
    """One overlap part: ``pixels``, ``thickness`` (pixels), the stretches of each chromosome on
    its border (fewer first) and whether any of its pixels is truth overlap."""

    pixels: int
    thickness: float
    fewer_stretches: int
    more_stretches: int
    over_crossing: bool


def border_stretches(part: OverlapPart) -> tuple[int, int]:
    """Separate (8-connected) stretches of chromosome 1 and of chromosome 2 on the part's border."""
    around = np.zeros(part.ring.shape, dtype=np.uint8)
    around[part.ring] = part.around
    first = ndimage.label(around == FIRST, structure=EIGHT_CONNECTED)[1]
    second = ndimage.label(around == SECOND, structure=EIGHT_CONNECTED)[1]
    return first, second


def thickness(part: OverlapPart) -> float:
    """The largest distance from a pixel of the part to the nearest pixel outside it."""
    return float(ndimage.distance_transform_edt(np.pad(part.inside, 1)).max())


def part_features(labels: np.ndarray, truth: np.ndarray) -> list[PartFeatures]:
    """The features of every overlap part of a (H, W) label map, against its truth map."""
    features = []
    for part in overlap_parts(labels):
        stretches = sorted(border_stretches(part))
        features.append(PartFeatures(
            int(part.inside.sum()), thickness(part), stretches[0], stretches[1],
            bool((truth[part.box][part.inside] == OVERLAP).any()),
        ))
    return features


def group_row(group: dict[str, object], parts: Sequence[PartFeatures]) -> dict[str, object]:
    """One table row: ``group``'s columns, then the parts' count, median pixels, thickness
    quantiles and the shares (percent) bordered once by each chromosome and twice or more by each."""
    widths = [part.thickness for part in parts]
    return {
        **group, "parts": len(parts),
        "median pixels": float(np.median([part.pixels for part in parts])),
        **{f"thickness {q}%": float(np.percentile(widths, q)) for q in THICKNESS_QUANTILES},
        "one stretch each %": 100 * float(np.mean([part.fewer_stretches == part.more_stretches == 1 for part in parts])),
        "two or more each %": 100 * float(np.mean([part.fewer_stretches >= 2 for part in parts])),
    }


def feature_rows(groups: Iterable[tuple[dict[str, object], Sequence[PartFeatures]]]) -> list[dict[str, object]]:
    """Rows of :func:`group_row`, each group split by ``over crossing``; empty halves left out."""
    rows = []
    for group, parts in groups:
        for over in (True, False):
            chosen = [part for part in parts if part.over_crossing == over]
            if chosen:
                rows.append(group_row({**group, "over crossing": "yes" if over else "no"}, chosen))
    return rows


def painted_parts(segmenter: Segmenter, crops: Sequence[tuple[np.ndarray, np.ndarray]], label: str) -> list[PartFeatures]:
    """The features of the overlap parts ``segmenter`` paints on each (grey image, truth) crop."""
    return [feature
            for image, truth in tqdm(crops, desc=label, disable=not sys.stderr.isatty(), leave=False)
            for feature in part_features(segmenter.segment_grey(image.astype(np.float32)).labels, truth)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="space/model", help="model folder or Hub id (default space/model)")
    parser.add_argument("--split", default="train", choices=CASE_SPLIT_NAMES, help="case split of the real pairs (default train)")
    parser.add_argument("--pommier", type=int, default=600, help="Pommier training crops to include (0: none)")
    parser.add_argument("--h5", type=Path, default=None, help="rebuilt Pommier dataset (default: the cache of amfl.data build)")
    parser.add_argument("--adir", type=Path, default=None, help="ADIR metaphase folder (default $AMFL_ADIR or the shared data)")
    parser.add_argument("--out", type=Path, default=None, help="also write the table to this markdown file")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default $AMFL_THREADS or 1)")
    args = parser.parse_args(argv)
    if args.pommier < 0:
        parser.error(f"--pommier must be 0 or more; got {args.pommier}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    limit_threads(args.threads)
    try:
        segmenter = Segmenter.from_pretrained(args.model)
        pairs = extract_real_pairs(list_metaphases(args.adir), progress=False).select(split=args.split)
        pommier = split_pairs(load_pairs(args.h5, progress=False)).train if args.pommier else None
    except (SourceError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    groups = []
    for kind in PAIR_KINDS:
        of_kind = [pair for pair in pairs if pair.cluster.kind == kind]
        for source in REAL_INPUTS:
            crops = [(getattr(pair, source), pair.labels) for pair in of_kind]
            groups.append(({"source": f"real {args.split}", "kind": kind, "input": source},
                           painted_parts(segmenter, crops, f"real {kind} {source}")))
    if pommier is not None:
        crops = list(zip(pommier.images[:args.pommier], pommier.labels[:args.pommier], strict=True))
        groups.append(({"source": "Pommier train", "kind": "overlapping", "input": "raw"},
                       painted_parts(segmenter, crops, "Pommier train")))
    rows = feature_rows(groups)
    if not rows:
        print("error: the model painted no overlap part on these pairs", file=sys.stderr)
        return 1
    show_and_save(records_table(rows), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
