"""One chromosome, one piece: small cut-off pieces of a name given to the other chromosome.

A chromosome is one connected object, its overlap with the partner counted in it. On the real
pairs the network often paints part of an arm with the partner's name
(``python -m amfl.real_errors``: misnamed pixels, the largest error class): the name then
comes in several pieces, one body and small pieces cut off from it that lie against the
partner. ``Preprocessor.cut_piece_share`` gives every such piece the partner's name when it
touches the partner's body and has fewer pixels than that share of its own name's body
(both counted with the overlap). Bodies are the largest pieces of each name within one
labelled cluster (8-connected). 0 leaves the names as they are. A large image, segmented in
tiles, is a whole field whose clusters can hold several chromosomes of one name, and is left
as it is.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from amfl.connectivity import EIGHT_CONNECTED
from amfl.naming import FIRST, OVERLAP, SECOND, each_map


def _pieces(
    labels: np.ndarray, name: int, clusters: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 8-connected pieces of ``name`` with the overlap counted in it: their map (0 off
    them), and per piece (index 0 unused) its pixel count, whether it is its cluster's largest
    (its body) and that body's pixel count. ``clusters`` labels the labelled pixels' clusters."""
    pieces, count = ndimage.label((labels == name) | (labels == OVERLAP), structure=EIGHT_CONNECTED)
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)
    cluster_of = np.zeros(count + 1, int)
    cluster_of[pieces.ravel()] = clusters.ravel()
    is_body = np.zeros(count + 1, bool)
    largest: dict[int, int] = {}
    for piece in range(1, count + 1):
        cluster = cluster_of[piece]
        if cluster not in largest or sizes[piece] > sizes[largest[cluster]]:
            largest[cluster] = piece
    is_body[list(largest.values())] = True
    body_size_of_cluster = np.zeros(clusters.max() + 1, int)
    body_size_of_cluster[cluster_of[is_body]] = sizes[is_body]
    return pieces, sizes, is_body, body_size_of_cluster[cluster_of]


def rename_cut_pieces(labels: np.ndarray, max_share: float) -> np.ndarray:
    """A (H, W) label map in which every piece of chromosome 1 or 2 cut off from its body,
    touching the other's body and smaller than ``max_share`` (0..1) of its own body, takes the
    other name (1 first, then 2 on the result); the map itself when nothing changes."""
    if max_share <= 0:
        return labels
    named = labels
    clusters, _ = ndimage.label(labels > 0, structure=EIGHT_CONNECTED)  # renaming keeps them
    for name, other in ((FIRST, SECOND), (SECOND, FIRST)):
        pieces, sizes, is_body, body_sizes = _pieces(named, name, clusters)
        if len(sizes) <= 2:
            continue
        other_pieces, _, other_is_body, _ = _pieces(named, other, clusters)
        near_other_body = ndimage.binary_dilation(other_is_body[other_pieces] & (other_pieces > 0), EIGHT_CONNECTED)
        touching = np.bincount(pieces[near_other_body], minlength=len(sizes)) > 0
        chosen = ~is_body & touching & (sizes < max_share * body_sizes)
        chosen[0] = False
        if chosen.any():
            named = np.where(chosen[pieces] & (named == name), other, named).astype(labels.dtype)
    return named


def rename_cut_pieces_batch(labels: np.ndarray, max_share: float) -> np.ndarray:
    """:func:`rename_cut_pieces` of every map of a (..., H, W) stack."""
    if max_share <= 0:
        return labels
    return each_map(labels, lambda one: rename_cut_pieces(one, max_share))
