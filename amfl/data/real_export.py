"""Export the real pairs as a Hugging Face ``DatasetDict`` with a dataset card and the ADIR
licence text (which must travel with every copy of the images).

Rows keep where they came from (case, metaphase, crop box), so a result can be traced back
to the metaphase; crops are stored at their own size, unpadded: padding belongs to the
model's preprocessing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from huggingface_hub import DatasetCard, DatasetCardData

from amfl.data.adir import CASE_SPLIT_FILE, CASE_SPLIT_NAMES, LICENCE_FILE, PUBLIC_ORIGIN, case_split
from amfl.data.real_pairs import ASIDE_KINDS, CROP_MARGIN, MIN_OVERLAP_PX, PAIR_KINDS, RealPair, RealPairs
from amfl.markdown import markdown_table

#: Name of the licence text in the export folder.
EXPORT_LICENCE_FILE = "LICENSE.txt"


def _features():
    import datasets

    return datasets.Features(
        {
            "raw": datasets.Image(),
            "masked": datasets.Image(),
            "label": datasets.Image(),
            "kind": datasets.ClassLabel(names=list(PAIR_KINDS)),
            "case": datasets.Value("string"),
            "metaphase": datasets.Value("string"),
            "probe": datasets.Value("string"),
            "box": datasets.Sequence(datasets.Value("int32"), length=4),
            "expert_classes": datasets.Sequence(datasets.Value("int32"), length=2),
            "overlap_px": datasets.Value("int32"),
        }
    )


def _to_dataset(pairs: list[RealPair]):
    import datasets

    return datasets.Dataset.from_dict(
        {
            "raw": [pair.raw for pair in pairs],
            "masked": [pair.masked for pair in pairs],
            "label": [pair.labels for pair in pairs],
            "kind": [pair.cluster.kind for pair in pairs],
            "case": [pair.cluster.case for pair in pairs],
            "metaphase": [pair.cluster.metaphase for pair in pairs],
            "probe": [pair.cluster.probe for pair in pairs],
            "box": [list(pair.cluster.box) for pair in pairs],
            "expert_classes": [list(pair.cluster.classes) for pair in pairs],
            "overlap_px": [pair.cluster.overlap_px for pair in pairs],
        },
        features=_features(),
    )


def export_real_pairs(real: RealPairs, out_dir: Path | str, licence: Path, command: str = "") -> Path:
    """Save train / validation / test with ``save_to_disk``, the card as README.md and the
    licence text beside them."""
    import datasets

    out_dir = Path(out_dir)
    splits = {name: _to_dataset(real.select(split=name)) for name in CASE_SPLIT_NAMES}
    datasets.DatasetDict(splits).save_to_disk(str(out_dir))
    shutil.copyfile(licence, out_dir / EXPORT_LICENCE_FILE)
    render_real_pairs_card(real, command).save(out_dir / "README.md")
    return out_dir


def render_real_pairs_card(real: RealPairs, command: str = "") -> DatasetCard:
    """The card: every number measured on ``real``."""
    counts = real.counts()
    data = DatasetCardData(
        license="other",
        license_name="adir-mfish-image-set",
        license_link="LICENSE.txt",
        pretty_name="Real overlapping and touching chromosome pairs (ADIR M-FISH, DAPI)",
        task_categories=["image-segmentation"],
        size_categories=["n<1K"],
        tags=["biology", "microscopy", "cytogenetics", "chromosomes", "semantic-segmentation"],
        configs=[{"config_name": "default", "data_files": [
            {"split": name, "path": f"{name}/*.arrow"} for name in CASE_SPLIT_NAMES
        ]}],
    )
    split_rows = [
        [name, str(len(case_split()[name])), *(str(counts.get(name, {}).get(kind, 0)) for kind in PAIR_KINDS)]
        for name in CASE_SPLIT_NAMES
    ]
    overlaps = np.array([pair.cluster.overlap_px for pair in real.pairs if pair.cluster.kind == "overlapping"])
    sections = [
        "# Real pairs of chromosomes (ADIR M-FISH metaphases, DAPI plane)",
        f"Every pair of chromosomes with expert overlap labels in {len({p.cluster.metaphase for p in real.pairs})} "
        f"real metaphases of the PSI/ADIR M-FISH image set #1 ({PUBLIC_ORIGIN}), cut out by `amfl.data`"
        + (f" with `{command}`" if command else "") + ".",
        "## Columns\n\n"
        f"- `raw`: the 8-bit DAPI crop as the microscope gives it: the pair's box plus {CROP_MARGIN} px, "
        "neighbours and background included.\n"
        "- `masked`: the same crop with every pixel outside the pair's labelled pixels set to 0 "
        "(the AMFL paper's setting).\n"
        "- `label`: 0 background, 1 the smaller chromosome (by area including the overlap), 2 the "
        "larger, 3 overlap (the Pommier naming).\n"
        f"- `kind`: `overlapping` (the expert marked {MIN_OVERLAP_PX} or more overlap pixels; median "
        f"{np.median(overlaps):.0f} px) or `touching` (a sliver of fewer pixels along the contact: each "
        "sliver pixel goes to the nearest chromosome, so labels are 0-2).\n"
        "- `case`, `metaphase`, `probe`, `box` (top, left, bottom, right in the metaphase, pixels), "
        "`expert_classes` (the expert's classes of chromosome 1 and 2), `overlap_px`.",
        "## Splits\n\nBy case, so no case is in two splits; the split is recorded in "
        f"`amfl/data/{CASE_SPLIT_FILE.name}`.\n\n"
        + markdown_table(["split", "cases", *PAIR_KINDS], split_rows),
        "## Set aside\n\nClusters with overlap pixels that are not a pair of two classes are kept "
        "for the whole-metaphase work: "
        + ", ".join(f"{counts['set_aside'][kind]} {kind.replace('_', ' ')}" for kind in ASIDE_KINDS) + ".",
        "## Licence\n\nThe images carry the ADIR licence (use, copy, modify and distribute for any "
        f"purpose with the copyright notice and its two paragraphs), in `{EXPORT_LICENCE_FILE}` "
        f"beside this card (copied from the source's `{LICENCE_FILE}`).",
    ]
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(sections) + "\n")
