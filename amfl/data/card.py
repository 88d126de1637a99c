"""The dataset card (README.md with the Hub's YAML header), written from measured facts.

Every number in the card comes from a :class:`DatasetFacts` computed on the data being
exported; nothing is typed in by hand. The header is dumped by huggingface_hub's
``DatasetCardData``, so it is Hub metadata by construction, and the card claims the
generation procedure only for data that ``amfl.data`` rebuilt itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from huggingface_hub import DatasetCard, DatasetCardData

from amfl.data.cleaning import CleaningReport
from amfl.data.fidelity import FidelityReport
from amfl.data.pairs import CLASS_NAMES
from amfl.data.protocol import Splits
from amfl.data.sources import PUBLIC_ORIGIN
from amfl.markdown import markdown_table
from amfl.pictures import CLASS_COLOUR_NAMES

LICENSE_NAME = "pommier-overlapping-chromosomes"
LICENSE_LINK = "https://github.com/jeanpat/DeepFISH"
CARD_TASK = "image-segmentation"
CARD_TAGS = ("biology", "microscopy", "cytogenetics", "chromosomes", "semantic-segmentation")
#: The published file the generation procedure below produced.
ORIGINAL_FILE = "LowRes_13434_overlapping_pairs.h5"
#: Hub size categories: the first whose upper limit exceeds the sample count.
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"))
LARGEST_SIZE_CATEGORY = "100K<n<1M"

SOURCE_IMAGES = (
    "J.-P. Pommier's two public source images of one lymphocyte metaphase (`DAPI.tif`, "
    f"`Cy3.tif`, 1536 x 1024, 12-bit; from {PUBLIC_ORIGIN})"
)
#: The recipe of ``amfl.data.rebuild``; ``{height}``/``{width}`` are the measured canvas.
PROCEDURE_STEPS = """\
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
6. Only placements with an overlap are kept, centred on a common {height} x {width} canvas."""
CLEANING_METHOD = (
    "The cubic-spline rotation leaves thin rims of the wrong label along edges and a few "
    "invalid 4s. Each label's regions that survive an opening with a radius-1 disk seed a "
    "watershed on the inverted distance to the background, which re-labels every other "
    "chromosome pixel."
)
BIBTEX = """\
@inproceedings{hu2017overlapping,
  title     = {Image Segmentation to Distinguish Between Overlapping Human Chromosomes},
  author    = {Hu, R. Lily and Karnowski, Jeremy and Fadely, Ross and Pommier, Jean-Patrick},
  booktitle = {Proc. NIPS},
  year      = {2017}
}
@misc{mei2020amfl,
  title  = {Adversarial Multiscale Feature Learning for Overlapping Chromosome Segmentation},
  author = {Mei, Liye and Yu, Yalan and Weng, Yueyun and Guo, Xiaopeng and Liu, Yan and
            Wang, Du and Liu, Sheng and Zhou, Fuling and Lei, Cheng}
}"""


@dataclass(frozen=True)
class DataOrigin:
    """Where the samples came from: rebuilt by ``amfl.data`` from the source images, or read
    from an original .h5 file. Only a rebuild may claim the generation procedure as its own;
    an .h5 file's samples are whatever that file holds."""

    #: Name of the .h5 file the samples were read from; None for the rebuild.
    h5_file: str | None = None

    @classmethod
    def rebuild(cls) -> DataOrigin:
        return cls()

    @classmethod
    def h5(cls, path: Path | str) -> DataOrigin:
        """Only the file name: the card is published, the user's folders are not."""
        return cls(Path(path).name)

    @property
    def is_rebuilt(self) -> bool:
        return self.h5_file is None


@dataclass(frozen=True)
class DatasetFacts:
    """What the card states, measured on the exported data."""

    origin: DataOrigin
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
    #: Whether the labels were cleaned (the default); ``cleaning`` measures it when known.
    labels_cleaned: bool = True

    @property
    def total(self) -> int:
        return sum(self.split_sizes.values())


def measure_facts(
    splits: Splits,
    origin: DataOrigin,
    seed: int,
    cleaning: CleaningReport | None = None,
    fidelity: FidelityReport | None = None,
    command: str = "",
    labels_cleaned: bool = True,
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
        labels_cleaned=labels_cleaned,
    )


def _size_category(total: int) -> str:
    return next((name for limit, name in SIZE_CATEGORIES if total < limit), LARGEST_SIZE_CATEGORY)


def _card_data(facts: DatasetFacts) -> DatasetCardData:
    """The YAML header: license, task, size, tags and one data file pattern per split (the
    names ``push_to_hub`` gives the uploaded shards)."""
    source = "rebuilt" if facts.origin.is_rebuilt else f"from {facts.origin.h5_file}"
    return DatasetCardData(
        license="other",
        license_name=LICENSE_NAME,
        license_link=LICENSE_LINK,
        pretty_name=f"Overlapping chromosome pairs (Pommier, {source})",
        task_categories=[CARD_TASK],
        size_categories=[_size_category(facts.total)],
        tags=list(CARD_TAGS),
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": name, "path": f"data/{name}-*"} for name in facts.split_sizes],
            }
        ],
    )


def _source_sentence(origin: DataOrigin) -> str:
    if origin.is_rebuilt:
        return (
            "Source: rebuilt from the source images `DAPI.tif` + `Cy3.tif` by `amfl.data` "
            f"(public origin: {PUBLIC_ORIGIN})."
        )
    return (
        f"Source: read from the original file `{origin.h5_file}` given with `--h5`; the "
        "samples are that file's, not a rebuild."
    )


def _summary(facts: DatasetFacts) -> str:
    height, width = facts.sample_shape
    command = f" Produced by `{facts.command}`." if facts.command else ""
    return (
        f"{facts.total:,} greyscale images of two overlapping human chromosomes ({height} x "
        f"{width} pixels) with a per-pixel label map, for semantic segmentation of overlaps. "
        + _source_sentence(facts.origin)
        + command
    )


def _columns(facts: DatasetFacts) -> str:
    return f"""\
## Columns

- `image`: 16-bit greyscale PNG; background 0; overlap pixels hold the sum of both
  chromosomes' intensities (largest value: {facts.grey_max}).
- `label`: 8-bit PNG label map, values 0-3 (table below).
- `sample_id`: position of the sample in generation order (pair, then rotations, then
  translations), so every row can be traced back to how it was made.
- `has_overlap`: whether the label map contains overlap pixels. The AMFL protocol scores
  only test samples with overlap: {facts.test_scored:,} of {facts.split_sizes['test']:,}."""


def _classes(facts: DatasetFacts) -> str:
    total = sum(facts.class_pixels)
    rows = [
        (str(value), name, colour, f"{count:,}", f"{100 * count / total:.2f}%")
        for value, (name, colour, count) in enumerate(zip(CLASS_NAMES, CLASS_COLOUR_NAMES, facts.class_pixels))
    ]
    return "## Classes\n\n" + markdown_table(("value", "class", "colour (paper)", "pixels", "share"), rows)


def _splits(facts: DatasetFacts) -> str:
    rows = [(name, f"{size:,}") for name, size in facts.split_sizes.items()]
    return (
        f"## Splits\n\nSeeded shuffle (seed {facts.seed}), first 80% train + validation, last "
        "20% test; validation is the last 25% of the training part (the AMFL paper's "
        "protocol).\n\n" + markdown_table(("split", "samples"), rows)
    )


def _procedure(facts: DatasetFacts) -> str:
    """For a rebuild, how these samples were made; for an .h5, how the published file was
    made, without claiming that the given file is that one."""
    height, width = facts.sample_shape
    steps = PROCEDURE_STEPS.format(height=height, width=width)
    if facts.origin.is_rebuilt:
        return (
            f"## Generation procedure\n\nRebuilt by `amfl.data` from {SOURCE_IMAGES}, following "
            f"the procedure that produced `{ORIGINAL_FILE}`:\n\n{steps}"
        )
    return (
        f"## How the original file was made\n\nThe samples are read from "
        f"`{facts.origin.h5_file}`, not rebuilt. The published "
        f"`{ORIGINAL_FILE}` (and its cleaned variant) was generated from {SOURCE_IMAGES} "
        f"by this procedure (the one `amfl.data` reproduces):\n\n{steps}"
    )


def _cleaning(facts: DatasetFacts) -> str:
    if facts.cleaning:
        result = f"{facts.cleaning}."
    elif facts.labels_cleaned:
        result = "The labels were cleaned this way (how many pixels changed was not measured for this card)."
    else:
        result = "Labels are as in the source file (not cleaned)."
    return f"## Label cleaning\n\n{CLEANING_METHOD} {result}"


def _fidelity(facts: DatasetFacts) -> str | None:
    if facts.fidelity is None:
        return None
    return (
        "## Fidelity to the original file\n\nCompared with the AMFL authors' published test "
        f"label maps (`python -m amfl.data fidelity`):\n\n```\n{facts.fidelity}\n```"
    )


def _citation() -> str:
    return (
        f'## Citation\n\nData: J.-P. Pommier, "Overlapping chromosomes" (2016), {PUBLIC_ORIGIN}.'
        f"\n\n```bibtex\n{BIBTEX}\n```"
    )


def render_dataset_card(facts: DatasetFacts) -> DatasetCard:
    """The card of the exported data: Hub metadata, then what was measured on it."""
    sections = [
        "# Overlapping chromosome pairs",
        _summary(facts),
        _columns(facts),
        _classes(facts),
        _splits(facts),
        _procedure(facts),
        _cleaning(facts),
        _fidelity(facts),
        _citation(),
    ]
    body = "\n\n".join(section for section in sections if section is not None)
    return DatasetCard(f"---\n{_card_data(facts).to_yaml()}\n---\n\n{body}\n")


def write_dataset_card(facts: DatasetFacts, path: Path | str) -> Path:
    path = Path(path)
    render_dataset_card(facts).save(path)
    return path
