"""Parameter counts of the registered models against the AMFL paper's Table IV.

Models are built on PyTorch's meta device (shapes only, no memory, no initialisation), so
the 100 M-parameter FastFCN costs nothing. Counts are at the registered configuration
(in_channels 1, num_classes 4).

    python benchmarks/count_parameters.py          # exits 1 if an undocumented model is >10 % off
"""

import argparse
import sys

import torch

from amfl.models import MODELS, create_model
from amfl.models.registry import TABLE_IV_DEVIATIONS, TABLE_IV_PARAMETERS

#: Allowed relative difference from Table IV.
TOLERANCE = 0.10


def count(name: str) -> int:
    with torch.device("meta"):
        model = create_model(name)
    return sum(parameter.numel() for parameter in model.parameters())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--all",
        action="store_true",
        help="also list registered models that Table IV does not report",
    )
    args = parser.parse_args()
    names = list(MODELS) if args.all else [name for name in MODELS if name in TABLE_IV_PARAMETERS]
    rows, failures = [], []
    for name in names:
        ours = count(name) / 1e6
        paper = TABLE_IV_PARAMETERS.get(name)
        if paper is None:
            rows.append((name, f"{ours:.2f}", "-", "-", ""))
            continue
        ratio = ours / (paper / 1e6)
        within = abs(ratio - 1) <= TOLERANCE
        note = "" if within else ("documented deviation" if name in TABLE_IV_DEVIATIONS else "OFF")
        if not within and name not in TABLE_IV_DEVIATIONS:
            failures.append(name)
        rows.append((name, f"{ours:.2f}", f"{paper / 1e6:.2f}", f"{ratio:.3f}", note))
    header = ("model", "ours (M)", "Table IV (M)", "ratio", "")
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]
    for row in (header, *rows):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    for name in names:
        if name in TABLE_IV_DEVIATIONS:
            print(f"{name}: {TABLE_IV_DEVIATIONS[name]}")
    if failures:
        listed = ", ".join(failures)
        print(f"more than {TOLERANCE:.0%} off Table IV without a documented reason: {listed}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
