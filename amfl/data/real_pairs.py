"""Real pairs of chromosomes from the labelled ADIR metaphases: the benchmark beside the
Pommier test split.

A cluster is a 4-connected component of labelled pixels (labels > 0) of a metaphase's expert
label image. One that holds overlap pixels (255) and exactly two classes is a real pair:
- **overlapping** when the expert marked at least ``MIN_OVERLAP_PX`` overlap pixels (one
  chromosome lies across the other): labels 1 (smaller chromosome, by area including the
  overlap), 2 (larger) and 3 (overlap), the Pommier naming;
- **touching** otherwise: the chromosomes only touch and the expert marked a sliver along the
  contact; each sliver pixel goes to the nearest chromosome, so labels are 0-2.
Clusters with overlap and one class (homologues crossing) or three or more classes are set
aside for the whole-metaphase work, counted, never silently dropped.

Each pair comes with two inputs: ``raw``, the DAPI crop as the microscope gives it (the
cluster's box plus ``CROP_MARGIN`` pixels, neighbours and background included), and
``masked``, the same crop with every pixel outside the pair's labelled pixels set to 0 (the
paper's setting: chromosomes on a background of 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from amfl.connectivity import FOUR_CONNECTED
from amfl.data.adir import CASE_SPLIT_NAMES, CASE_SPLIT_SHARES, OVERLAP_VALUE, Metaphase, draw_case_split, split_of_case

#: Overlap pixels that make a pair "overlapping" rather than "touching" (ABOUT.md: the
#: expert's overlap label is bimodal, slivers of a few pixels vs. 20 px and more).
MIN_OVERLAP_PX = 20
#: Pixels of context kept around a cluster's bounding box in the crops.
CROP_MARGIN = 16
PAIR_KINDS = ("overlapping", "touching")
#: Kinds of overlap clusters kept aside: one class (homologues), three or more classes.
ASIDE_KINDS = ("homologue_overlap", "multi_chromosome")


@dataclass(frozen=True)
class Cluster:
    """A cluster of labelled pixels with overlap, located in its metaphase."""

    metaphase: str
    case: str
    kind: str
    #: Crop box in the metaphase, pixels: rows top..bottom-1, columns left..right-1.
    box: tuple[int, int, int, int]
    #: Expert classes in the cluster (for a pair: smaller chromosome first).
    classes: tuple[int, ...]
    overlap_px: int

    @property
    def split(self) -> str:
        return split_of_case(self.case)

    @property
    def probe(self) -> str:
        return self.case[0]


@dataclass(frozen=True)
class RealPair:
    """A real pair: where it is, and its crops (uint8 ``raw`` and ``masked``, uint8 labels
    0-3), all of the box's size."""

    cluster: Cluster
    raw: np.ndarray
    masked: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class RealPairs:
    """Every real pair of a set of metaphases, and the overlap clusters set aside."""

    pairs: list[RealPair]
    aside: list[Cluster]

    def select(self, split: str | None = None, kind: str | None = None) -> list[RealPair]:
        return [
            pair for pair in self.pairs
            if (split is None or pair.cluster.split == split) and (kind is None or pair.cluster.kind == kind)
        ]

    def counts(self) -> dict[str, dict[str, int]]:  # split or "set_aside" -> kind -> count
        """Pairs per split and kind, and the set-aside clusters per kind."""
        table = {name: dict.fromkeys(PAIR_KINDS, 0) for name in CASE_SPLIT_NAMES}
        for pair in self.pairs:
            table[pair.cluster.split][pair.cluster.kind] += 1
        table["set_aside"] = {kind: sum(c.kind == kind for c in self.aside) for kind in ASIDE_KINDS}
        return table


def extract_real_pairs(metaphases: Iterable[Metaphase], progress: bool = True) -> RealPairs:
    """Read each metaphase and cut out its pairs; clusters that are not pairs are set aside."""
    pairs, aside = [], []
    for metaphase in tqdm(list(metaphases), desc="real pairs", unit="metaphase", disable=not progress):
        dapi, labels = metaphase.read()
        for cluster, component in overlap_clusters(labels, metaphase):
            if cluster.kind in PAIR_KINDS:
                pairs.append(_pair(cluster, component, dapi, labels))
            else:
                aside.append(cluster)
    return RealPairs(pairs, aside)


def overlap_clusters(labels: np.ndarray, metaphase: Metaphase) -> Iterator[tuple[Cluster, np.ndarray]]:
    """Every cluster with overlap pixels and its (H, W) component mask within its box."""
    components, _ = ndimage.label(labels > 0, FOUR_CONNECTED)
    height, width = labels.shape
    for number, found in enumerate(ndimage.find_objects(components), start=1):
        values = labels[found][components[found] == number]
        overlap = int((values == OVERLAP_VALUE).sum())
        if overlap == 0:
            continue
        classes = _classes_by_area(values)
        box = (
            max(found[0].start - CROP_MARGIN, 0), max(found[1].start - CROP_MARGIN, 0),
            min(found[0].stop + CROP_MARGIN, height), min(found[1].stop + CROP_MARGIN, width),
        )
        rows, columns = slice(box[0], box[2]), slice(box[1], box[3])
        cluster = Cluster(metaphase.name, metaphase.case, _kind(len(classes), overlap), box, classes, overlap)
        yield cluster, components[rows, columns] == number


def _classes_by_area(values: np.ndarray) -> tuple[int, ...]:
    """The cluster's classes, smallest first by area including the shared overlap (ties
    broken by class number, so the order is deterministic)."""
    classes, areas = np.unique(values[values != OVERLAP_VALUE], return_counts=True)
    return tuple(int(c) for _, c in sorted(zip(areas.tolist(), classes.tolist(), strict=True)))


def _kind(class_count: int, overlap_px: int) -> str:
    if class_count == 1:
        return "homologue_overlap"
    if class_count > 2:
        return "multi_chromosome"
    return "overlapping" if overlap_px >= MIN_OVERLAP_PX else "touching"


def _pair(cluster: Cluster, component: np.ndarray, dapi: np.ndarray, labels: np.ndarray) -> RealPair:
    top, left, bottom, right = cluster.box
    raw = dapi[top:bottom, left:right].copy()
    expert = np.where(component, labels[top:bottom, left:right], 0)
    return RealPair(cluster, raw, np.where(component, raw, 0).astype(np.uint8), pair_labels(expert, cluster))


def pair_labels(expert: np.ndarray, cluster: Cluster) -> np.ndarray:
    """Expert labels of one cluster (other pixels 0) -> the paper's classes, uint8.

    Overlapping: smaller chromosome 1, larger 2, overlap 3. Touching: the sliver pixels go
    to the nearer chromosome (Euclidean distance to its pixels; a tie goes to the smaller),
    and 1 stays the smaller of the two after that."""
    smaller, larger = cluster.classes
    result = np.zeros(expert.shape, np.uint8)
    result[expert == smaller] = 1
    result[expert == larger] = 2
    result[expert == OVERLAP_VALUE] = 3
    return result if cluster.kind == "overlapping" else split_sliver(result)


def split_sliver(labels: np.ndarray) -> np.ndarray:
    """Labels 0-3 of a pair that only touches -> 0-2, as touching pairs are scored: each
    overlap pixel goes to the nearer chromosome (Euclidean distance to its own pixels; a tie
    goes to 1), and 1 stays the smaller of the two after that."""
    to_smaller = ndimage.distance_transform_edt(labels != 1)
    to_larger = ndimage.distance_transform_edt(labels != 2)
    overlap = labels == 3
    result = labels.astype(np.uint8, copy=True)
    result[overlap & (to_smaller <= to_larger)] = 1
    result[overlap & (to_smaller > to_larger)] = 2
    if (result == 1).sum() > (result == 2).sum():
        result = np.choose(result, [0, 2, 1]).astype(np.uint8)
    return result


#: Seeds tried when the case split is drawn.
SPLIT_SEEDS = range(2000)


def balanced_split_seed(clusters: Iterable[Cluster], cases: Iterable[str], seeds: Iterable[int] = SPLIT_SEEDS) -> int:
    """The seed of :func:`amfl.data.adir.draw_case_split` whose split comes closest to
    ``CASE_SPLIT_SHARES`` of each kind of pair (sum of absolute share differences): with 47
    cases of very unequal pair counts, a plain draw can leave a test split of a dozen
    overlapping pairs. The first best seed wins."""
    per_case: dict[str, dict[str, int]] = {}
    for cluster in clusters:
        if cluster.kind in PAIR_KINDS:
            counts = per_case.setdefault(cluster.case, dict.fromkeys(PAIR_KINDS, 0))
            counts[cluster.kind] += 1
    totals = {kind: sum(counts[kind] for counts in per_case.values()) for kind in PAIR_KINDS}
    cases = sorted(cases)

    def imbalance(seed: int) -> float:
        split = draw_case_split(cases, seed)
        return sum(
            abs(sum(per_case.get(case, {}).get(kind, 0) for case in split[name]) / max(totals[kind], 1) - share)
            for name, share in CASE_SPLIT_SHARES.items()
            for kind in PAIR_KINDS
        )

    return min(seeds, key=imbalance)
