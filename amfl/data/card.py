"""The dataset card (README.md with the Hub's YAML header), written from measured facts.

Every number in the card comes from a :class:`DatasetFacts` computed on the data being
exported; nothing is typed in by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amfl.data.cleaning import CleaningReport
from amfl.data.fidelity import FidelityReport
from amfl.data.pairs import CLASS_NAMES
from amfl.data.protocol import Splits
from amfl.data.sources import PUBLIC_ORIGIN

CLASS_COLOUR_NAMES = ("black", "red", "green", "blue")


@dataclass(frozen=True)
class DatasetFacts:
    """What the card states, measured on the exported data."""

    origin: str
    sample_shape: tuple[int, int]
    split_sizes: dict[str, int]
    test_scored: int
    seed: int
    #: Label pixel counts per class over the whole dataset (index = label value).
    class_pixels: tuple[int, ...]
    #: Largest grey value in the data (overlaps add two intensities).
    grey_max: int
    cleaning: CleaningReport | None = None
    fidelity: FidelityReport | None = None
    command: str = ""
    extra_notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.split_sizes.values())


def measure_facts(
    splits: Splits,
    origin: str,
    seed: int,
    cleaning: CleaningReport | None = None,
    fidelity: FidelityReport | None = None,
    command: str = "",
) -> DatasetFacts:
    labels = np.concatenate([splits.train.labels, splits.validation.labels, splits.test.labels])
    counts = np.bincount(labels.ravel(), minlength=len(CLASS_NAMES))
    sizes = splits.sizes()
    return DatasetFacts(
        origin=origin,
        sample_shape=splits.train.sample_shape,
        split_sizes={"train": sizes.train, "validation": sizes.validation, "test": sizes.test},
        test_scored=sizes.test_scored,
        seed=seed,
        class_pixels=tuple(int(count) for count in counts),
        grey_max=int(max(split.images.max() for split in (splits.train, splits.validation, splits.test))),
        cleaning=cleaning,
        fidelity=fidelity,
        command=command,
    )


def _size_category(total: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if total < limit:
            return name
    return "100K<n<1M"


def render_dataset_card(facts: DatasetFacts) -> str:
    height, width = facts.sample_shape
    total_pixels = sum(facts.class_pixels)
    class_rows = "\n".join(
        f"| {value} | {name} | {colour} | {count:,} | {100 * count / total_pixels:.2f}% |"
        for value, (name, colour, count) in enumerate(
            zip(CLASS_NAMES, CLASS_COLOUR_NAMES, facts.class_pixels)
        )
    )
    split_rows = "\n".join(f"| {name} | {size:,} |" for name, size in facts.split_sizes.items())
    cleaning = f"\n{facts.cleaning}.\n" if facts.cleaning else "\nLabels are as in the source file.\n"
    fidelity = (
        "\n## Fidelity to the original file\n\nCompared with the AMFL authors' published test "
        f"label maps (`python -m amfl.data fidelity`):\n\n```\n{facts.fidelity}\n```\n"
        if facts.fidelity
        else ""
    )
    command = f"\nProduced by `{facts.command}`.\n" if facts.command else ""
    return f"""---
license: other
license_name: pommier-overlapping-chromosomes
license_link: https://github.com/jeanpat/DeepFISH
pretty_name: Overlapping chromosome pairs (Pommier, rebuilt)
task_categories:
- image-segmentation
size_categories:
- {_size_category(facts.total)}
tags:
- biology
- microscopy
- cytogenetics
- chromosomes
- semantic-segmentation
configs:
- config_name: default
  data_files:
{chr(10).join(f"  - split: {name}{chr(10)}    path: data/{name}-*" for name in facts.split_sizes)}
---

# Overlapping chromosome pairs

{facts.total:,} greyscale images of two overlapping human chromosomes ({height} x {width}
pixels) with a per-pixel label map, for semantic segmentation of overlaps. Source:
{facts.origin}.{command}

## Columns

- `image`: 16-bit greyscale PNG; background 0; overlap pixels hold the sum of both
  chromosomes' intensities (largest value: {facts.grey_max}).
- `label`: 8-bit PNG label map, values 0-3 (table below).
- `sample_id`: position of the sample in generation order (pair, then rotations, then
  translations), so every row can be traced back to how it was made.
- `has_overlap`: whether the label map contains overlap pixels. The AMFL protocol scores
  only test samples with overlap: {facts.test_scored:,} of {facts.split_sizes['test']:,}.

## Classes

| value | class | colour (paper) | pixels | share |
|---|---|---|---|---|
{class_rows}

## Splits

Seeded shuffle (seed {facts.seed}), first 80% train + validation, last 20% test; validation
is the last 25% of the training part (the AMFL paper's protocol).

| split | samples |
|---|---|
{split_rows}

## Generation procedure

Rebuilt from J.-P. Pommier's two public source images of one lymphocyte metaphase
(`DAPI.tif`, `Cy3.tif`, 1536 x 1024, 12-bit; from {PUBLIC_ORIGIN}), following the
procedure that produced `LowRes_13434_overlapping_pairs.h5`:

1. Crop to rows 50-899 and columns 300-1149; 12-bit to 8-bit by dividing by 16.
2. White top-hat (elliptical element, 50 x 50 for DAPI, 9 x 9 for Cy3), minus 5, clipped at 0.
3. Chromosomes: Gaussian local threshold of DAPI (block 221), opening with a radius-5
   disk, objects touching the border removed, connected components: 46 chromosomes.
4. Intensity: mean of both top-hatted channels rescaled to 0-255; each chromosome cut
   out by its bounding box on a common canvas.
5. Sorted by area, every 4th kept (12), downsampled by 2; for each of the 66 pairs, both
   rotated by 0, 40, 80, 120, 160 degrees (cubic spline) and the first placed at 9
   positions around the second (fractions 0.25, 0.5, 0.75 of the free range); grey values
   and masks (1 and 2) add, so the overlap is 3.
6. Only placements with an overlap are kept, centred on a common {height} x {width} canvas.

Label cleaning: the cubic-spline rotation leaves thin rims of the wrong label along edges
and a few invalid 4s. Each label's regions that survive an opening with a radius-1 disk
seed a watershed on the inverted distance to the background, which re-labels every other
chromosome pixel.{cleaning}{fidelity}
## Citation

Data: J.-P. Pommier, "Overlapping chromosomes" (2016), {PUBLIC_ORIGIN}.

```bibtex
@inproceedings{{hu2017overlapping,
  title     = {{Image Segmentation to Distinguish Between Overlapping Human Chromosomes}},
  author    = {{Hu, R. Lily and Karnowski, Jeremy and Fadely, Ross and Pommier, Jean-Patrick}},
  booktitle = {{Proc. NIPS}},
  year      = {{2017}}
}}
@misc{{mei2020amfl,
  title  = {{Adversarial Multiscale Feature Learning for Overlapping Chromosome Segmentation}},
  author = {{Mei, Liye and Yu, Yalan and Weng, Yueyun and Guo, Xiaopeng and Liu, Yan and
            Wang, Du and Liu, Sheng and Zhou, Fuling and Lei, Cheng}}
}}
```
"""


def write_dataset_card(facts: DatasetFacts, path: Path | str) -> Path:
    path = Path(path)
    path.write_text(render_dataset_card(facts), encoding="utf-8")
    return path
