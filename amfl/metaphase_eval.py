"""Score the whole-metaphase mode (:mod:`amfl.metaphase`) on the labelled ADIR metaphases.

    python -m amfl.metaphase_eval [--model space/model] [--split all] [--out results/metaphase]

The count of each metaphase against its case's ISCN count (share counted exactly, mean
absolute error) and against the expert label image's own count, overall, per split and per
probe set (A, P, V); the real overlapping pairs (:mod:`amfl.data.real_pairs`) found and
separated, with the paper's scores on them; a naive baseline beside it (global Otsu on the
raw image, every connected component counted); the commonest failure and a picture of the
metaphase with the largest count error. Writes ``metaphase.md``, ``metaphase.json`` and
``failure.png`` to ``--out``. The headline is the test split (``amfl/data/adir_case_split.json``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from amfl.data.adir import Metaphase, list_metaphases, split_of_case
from amfl.data.real_pairs import overlap_clusters, pair_labels
from amfl.data.sources import SourceError
from amfl.markdown import markdown_table
from amfl.metaphase import MetaphaseResult, analyse_metaphase
from amfl.metaphase_candidates import SET_ASIDE_KINDS
from amfl.metaphase_truth import (
    EIGHT, FAILURES, REVIEW_COVERAGE, compare_with_expert, expert_chromosomes, object_map, per_region,
)
from amfl.real_scoring import mean_scores
from amfl.segmentation import Segmenter, limit_threads

#: A real pair is found when a unit of the pipeline covers it with at least this IoU.
FOUND_IOU = 0.5
SPLITS = ("test", "validation", "train")


def baseline_components(grey: np.ndarray) -> np.ndarray:
    """The naive baseline: global Otsu threshold of the raw image, 8-connected components."""
    level = threshold_otsu(grey) if grey.max() > grey.min() else grey.max()
    return ndimage.label(grey > level, EIGHT)[0]


def units(result: MetaphaseResult) -> list[tuple[np.ndarray, tuple[int, ...]]]:
    """What may cover a real pair: every counted object, every model pair, every chromosome
    (full-size mask, chromosome ids)."""
    found = []
    for o in result.objects:
        members = [c for c in result.chromosomes if c.object_id == o.id]
        found.append((np.logical_or.reduce([result.full_mask(c) for c in members]), o.chromosome_ids))
        found.extend((result.full_mask(c), (c.id,)) for c in members)
        found.extend(
            (result.full_mask(c) | result.full_mask(result.chromosomes[c.partner - 1]), (c.id, c.partner))
            for c in members if c.partner and c.partner > c.id
        )
    return found


def score_pairs(metaphase: Metaphase, labels: np.ndarray, result: MetaphaseResult, baseline: np.ndarray) -> list[dict]:
    """Every overlapping real pair of the metaphase: found / separated by the pipeline, the
    paper's scores of its separation, and found by the baseline."""
    rows, candidates = [], units(result)
    for cluster, component in overlap_clusters(labels, metaphase):
        if cluster.kind != "overlapping":
            continue
        top, left, bottom, right = cluster.box
        truth = pair_labels(np.where(component, labels[top:bottom, left:right], 0), cluster)
        union = np.zeros(labels.shape, bool)
        union[top:bottom, left:right] = component
        best_iou, best = 0.0, None
        for mask, ids in candidates:
            iou = (mask & union).sum() / max((mask | union).sum(), 1)
            if iou > best_iou:
                best_iou, best = iou, ids
        found = best_iou >= FOUND_IOU
        chosen = [result.chromosomes[i - 1] for i in best] if found else []
        separated = len(chosen) == 2 and all(c.separated_by_model for c in chosen)
        predicted = np.zeros(truth.shape, np.uint8)
        if separated:
            small, large = sorted(chosen, key=lambda c: c.area)
            a, b = (result.full_mask(c)[top:bottom, left:right] for c in (small, large))
            predicted[a], predicted[b], predicted[a & b] = 1, 2, 3
        elif found:
            predicted[np.logical_or.reduce([result.full_mask(c)[top:bottom, left:right] for c in chosen])] = 2
        base_ious = [
            ((baseline == n) & union).sum() / max(((baseline == n) | union).sum(), 1)
            for n in np.unique(baseline[union]) if n > 0
        ]
        rows.append({
            "metaphase": metaphase.name, "iou": round(float(best_iou), 4), "found": bool(found), "separated": separated,
            "baseline_found": bool(base_ious and max(base_ious) >= FOUND_IOU), "predicted": predicted, "truth": truth,
        })
    return rows


def evaluate_one(metaphase: Metaphase, segmenter: Segmenter) -> tuple[dict, list[dict], MetaphaseResult]:
    dapi, labels = metaphase.read()
    result = analyse_metaphase(dapi, segmenter)
    groups = expert_chromosomes(labels)
    baseline = baseline_components(dapi)
    row = {
        "metaphase": metaphase.name, "case": metaphase.case, "split": split_of_case(metaphase.case),
        "probe": metaphase.probe, "iscn": metaphase.expected_count, "expert": int(sum(c for _, c in groups)),
        "pipeline": result.count, "baseline": int(baseline.max()), "seconds": round(result.seconds, 3),
        "model_calls": result.model_calls, "set_aside": {k: sum(s.kind == k for s in result.set_aside) for k in SET_ASIDE_KINDS},
        "review": sum(c.review for c in result.chromosomes), **compare_with_expert(result, groups),
    }
    return row, score_pairs(metaphase, labels, result, baseline), result


def count_scores(rows: list[dict], method: str, reference: str) -> dict[str, float]:
    errors = [row[method] - row[reference] for row in rows if row[reference] is not None]
    if not errors:
        return {"metaphases": 0}
    return {
        "metaphases": len(errors), "exact": round(100 * float(np.mean([e == 0 for e in errors])), 1),
        "mae": round(float(np.mean(np.abs(errors))), 2), "mean_error": round(float(np.mean(errors)), 2),
    }


def pair_scores(pairs: list[dict], method: str) -> dict[str, object]:
    if method == "baseline":
        return {"pairs": len(pairs), "found": sum(p["baseline_found"] for p in pairs), "separated": 0}
    separated = [p for p in pairs if p["separated"]]
    summary: dict[str, object] = {
        "pairs": len(pairs), "found": sum(p["found"] for p in pairs), "separated": len(separated),
    }
    if separated:
        summary["scores_separated"] = _rounded(mean_scores([p["predicted"] for p in separated], [p["truth"] for p in separated]))
    if pairs:
        summary["scores_all"] = _rounded(mean_scores([p["predicted"] for p in pairs], [p["truth"] for p in pairs]))
    return summary


def _rounded(scores: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 2) for name, value in scores.items()}


def summarise(rows: list[dict], pairs: list[dict]) -> dict[str, dict]:
    """Count and pair scores per group (``all``, each split, each probe and split/probe)."""
    groups = {"all": (rows, pairs)}
    for split in SPLITS:
        for probe in (None, "A", "P", "V"):
            name = split if probe is None else f"{split}/{probe}"
            chosen = [r for r in rows if r["split"] == split and (probe is None or r["probe"] == probe)]
            names = {r["metaphase"] for r in chosen}
            if chosen:
                groups[name] = (chosen, [p for p in pairs if p["metaphase"] in names])
    table = {}
    for name, (chosen, chosen_pairs) in groups.items():
        table[name] = {
            "expert_vs_iscn": count_scores(chosen, "expert", "iscn"),
            **{
                method: {
                    "vs_iscn": count_scores(chosen, method, "iscn"), "vs_expert": count_scores(chosen, method, "expert"),
                    "overlapping_pairs": pair_scores(chosen_pairs, method),
                } for method in ("pipeline", "baseline")
            },
            "failures": {kind: sum(r["failures"][kind] for r in chosen) for kind in FAILURES},
            "review_coverage": {key: sum(r["review_coverage"][key] for r in chosen) for key in REVIEW_COVERAGE},
        }
    return table


def markdown(summary: dict[str, dict], headline: str, timing: dict, command: str) -> str:
    header = ["Metaphases", "Method", "Exact vs ISCN %", "MAE vs ISCN", "Mean error", "Exact vs expert %",
              "MAE vs expert", "Overlapping pairs", "Found", "Separated", "Dice", "IoU", "Hausdorff"]

    def rows_of(name: str) -> list[list[str]]:
        out = []
        for method in ("pipeline", "baseline"):
            entry = summary[name][method]
            iscn, expert, pairs = entry["vs_iscn"], entry["vs_expert"], entry["overlapping_pairs"]
            scores = pairs.get("scores_separated", {})
            out.append([
                f"{name} ({iscn['metaphases']})", method, f"{iscn['exact']:.1f}", f"{iscn['mae']:.2f}", f"{iscn['mean_error']:+.2f}",
                f"{expert['exact']:.1f}", f"{expert['mae']:.2f}", str(pairs["pairs"]), str(pairs["found"]),
                str(pairs["separated"]), *(f"{scores[k]:.2f}" if k in scores else "-" for k in ("dice", "iou", "hausdorff")),
            ])
        return out

    probes = [f"{headline}/{p}" for p in "APV" if f"{headline}/{p}" in summary]
    others = [name for name in ("all", *SPLITS) if name in summary and name != headline]
    labels_row = summary[headline]["expert_vs_iscn"]
    fail = summary[headline]["failures"]
    commonest = max(fail, key=fail.get)
    lines = [
        f"# Whole-metaphase mode on the ADIR metaphases: {headline} split (headline)", "", f"```bash\n{command}\n```", "",
        markdown_table(header, rows_of(headline) + [r for p in probes for r in rows_of(p)]), "",
        "All splits (the rules were measured on the training cases only):", "",
        markdown_table(header, [r for name in others for r in rows_of(name)]), "",
        f"The expert label images' own count matches the ISCN count exactly in {labels_row['exact']:.1f} % of the "
        f"{headline} metaphases (MAE {labels_row['mae']:.2f}): a metaphase may be incomplete or hold a neighbour's chromosomes.", "",
        f"Count errors on the {headline} split by kind (chromosomes): "
        + ", ".join(f"{kind} {count}" for kind, count in sorted(fail.items(), key=lambda kv: -kv[1]))
        + f". Commonest: **{commonest}**, {FAILURES[commonest]}.", "",
        _review_line(summary[headline]["review_coverage"], headline), "",
        f"Time per metaphase (pipeline, model included): median {timing['median_s']:.2f} s, max {timing['max_s']:.2f} s "
        f"over {timing['metaphases']} metaphases, {timing['threads']} torch thread(s) on a shared CPU.", "",
    ]
    return "\n".join(lines)


def _review_line(coverage: dict[str, int], split: str) -> str:
    def share(part: int, whole: int) -> str:
        return f"{part} ({100 * part / whole:.1f} %)" if whole else "0"

    return (
        f"Review flags on the {split} split: of {coverage['objects_wrong']} counted objects whose count differs from the expert's, "
        f"{share(coverage['objects_wrong_flagged'], coverage['objects_wrong'])} carry a flag; of {coverage['objects_right']} counted right, "
        f"{share(coverage['objects_right_flagged'], coverage['objects_right'])} do."
    )


def failure_picture(metaphase: Metaphase, result: MetaphaseResult, path: Path, row: dict) -> None:
    """The metaphase with numbered objects: green ids where the count matches the expert's,
    red ``counted/expert`` where not; set-aside objects outlined (nuclei blue, rest yellow)."""
    from PIL import Image, ImageDraw

    from amfl.pictures import stretch_to_uint8

    dapi, labels = metaphase.read()
    counted, aside = object_map(result)
    expert = per_region(counted, expert_chromosomes(labels))
    grey = stretch_to_uint8(np.clip(dapi.astype(np.float32), 0, np.percentile(dapi, 99.5)))
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    first, second = result.instance_layers()
    colours = np.random.default_rng(0).integers(70, 256, (result.count + 1, 3)).astype(np.uint8)
    tint = colours[first]
    rgb = np.where(first[..., None] > 0, (0.55 * rgb + 0.45 * tint).astype(np.uint8), rgb)
    rgb[second > 0] = (255, 255, 255)
    for item in result.set_aside:
        edge = aside == item.object_id
        edge &= ~ndimage.binary_erosion(edge)
        rgb[edge] = (80, 140, 255) if item.kind == "nucleus" else (255, 220, 0)
    scale = 2
    picture = Image.fromarray(rgb).resize((rgb.shape[1] * scale, rgb.shape[0] * scale), Image.NEAREST)
    canvas = Image.new("RGB", (picture.width, picture.height + 44), (0, 0, 0))
    canvas.paste(picture, (0, 44))
    draw = ImageDraw.Draw(canvas)
    for o in result.objects:
        truth = int(expert[o.id]) if o.id < len(expert) else 0
        text, colour = (str(o.id), (0, 255, 0)) if truth == o.count else (f"{o.id}: {o.count}/{truth}", (255, 60, 60))
        draw.text((o.box[3] * scale + 2, o.box[0] * scale + 44), text, fill=colour)
    worst = max(row["failures"], key=row["failures"].get)
    draw.text((6, 4), f"{metaphase.name}: counted {row['pipeline']}, expert {row['expert']}, ISCN {row['iscn']}. "
                      f"Red 'id: counted/expert' where they differ; white: pixels of two chromosomes; blue outline nucleus, yellow debris/faint.", fill=(255, 255, 255))
    draw.text((6, 22), f"Main error here: {worst} ({row['failures'][worst]}): {FAILURES[worst]}", fill=(255, 255, 255))
    canvas.save(path)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="space/model", help="model folder or Hub id (default space/model)")
    parser.add_argument("--split", default="all", choices=("all", *SPLITS), help="metaphases to evaluate")
    parser.add_argument("--out", type=Path, default=Path("results/metaphase"), help="output folder")
    parser.add_argument("--adir", type=Path, default=None, help="ADIR metaphase folder (default $AMFL_ADIR or the shared data)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N metaphases (a quick check)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default $AMFL_THREADS or 1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    threads = limit_threads(args.threads)
    command = "python -m amfl.metaphase_eval " + shlex.join(sys.argv[1:] if argv is None else argv)
    try:
        every = list_metaphases(args.adir)
    except SourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    segmenter = Segmenter.from_pretrained(args.model)
    metaphases = [m for m in every if args.split == "all" or split_of_case(m.case) == args.split]
    metaphases = metaphases[: args.limit] if args.limit else metaphases
    rows, pairs, results = [], [], {}
    for index, metaphase in enumerate(metaphases, start=1):
        row, found, results[metaphase.name] = evaluate_one(metaphase, segmenter)
        rows.append(row)
        pairs.extend(found)
        print(f"[{index}/{len(metaphases)}] {metaphase.name}: counted {row['pipeline']}, expert {row['expert']}, "
              f"ISCN {row['iscn']}, baseline {row['baseline']} ({row['seconds']:.2f} s)", flush=True)
    summary = summarise(rows, pairs)
    headline = "test" if "test" in summary else next(name for name in (*SPLITS, "all") if name in summary)
    seconds = [row["seconds"] for row in rows]
    timing = {"metaphases": len(rows), "median_s": statistics.median(seconds), "max_s": max(seconds), "threads": threads}
    args.out.mkdir(parents=True, exist_ok=True)
    chosen = [r for r in rows if headline == "all" or r["split"] == headline]
    worst = max(chosen, key=lambda r: (abs(r["pipeline"] - r["iscn"]) if r["iscn"] is not None else -1, r["metaphase"]))
    picture = args.out / "failure.png"
    failure_picture(next(m for m in metaphases if m.name == worst["metaphase"]), results[worst["metaphase"]], picture, worst)
    record = {
        "command": command, "model": args.model, "headline_split": headline, "summary": summary, "timing": timing,
        "failure_kinds": FAILURES, "failure_picture": {"file": picture.name, "metaphase": worst["metaphase"]},
        "metaphases": rows, "pairs": [{k: v for k, v in p.items() if k not in ("predicted", "truth")} for p in pairs],
    }
    (args.out / "metaphase.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    (args.out / "metaphase.md").write_text(markdown(summary, headline, timing, command), encoding="utf-8")
    print(markdown(summary, headline, timing, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
