"""Which rows of ``amfl.overlap_sweep`` tables beat a gate on every validation measure: the
tally behind each candidate rule of ``results/real-image/README.md``.

A sweep (``--out FILE.md``) has one row per output setting: the settings, then the measures
(Pommier validation Dice, IoU and Hausdorff and each real set's Dice). A row qualifies when it
beats the gate on every measure: a higher Dice or IoU, a lower Hausdorff; a tie does not beat.
With ``--ties_pass`` a tie passes, and a row qualifies when it is no worse on every measure and
better on at least one: the terms for the default's own weights under other output steps,
which leave the sets they cannot touch exactly as they were. The gate is one row of a sweep of
the bundled default, found by its part and piece shares, whether it names crossing arms, their
reach and its covered chromosomes' size.
Qualifiers are ranked by the mean of the real sets' Dice (the rules' choice), the other rows by
how many measures they lose, then by that mean::

    python -m amfl.sweep_gate results/real-image/stop48/sweep-*.md \\
        --gate results/real-image/stop41/sweep-runs-wise-md2-mean-weight-1.md --gate_shares 0.35 0.5
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from amfl.markdown import markdown_table, show_and_save

#: The settings columns of a sweep, in its order (``amfl.overlap_sweep`` writes them); every other column is a measure.
SETTING_COLUMNS = ("min overlap pixels", "min border share", "min brightness", "min part share", "cut piece share",
                   "crossing arms", "arm reach", "min chromosome pixels")
#: Settings added after the first sweeps were written, and the value the older tables ran with.
ADDED_SETTINGS = {"crossing arms": 0.0, "arm reach": 0.0, "min chromosome pixels": 0.0}
#: The settings that find the gate's row in a sweep of the default, in ``gate_row``'s order.
GATE_SETTINGS = ("min part share", "cut piece share", "crossing arms", "arm reach", "min chromosome pixels")
#: The two shares, shown in every report whether they vary or not, and their short names there.
SHARE_COLUMNS = {"min part share": "part share", "cut piece share": "piece share"}
#: Measures where lower is better; every other measure is better higher.
LOWER_IS_BETTER = "Hausdorff"
#: How the real sets' measures begin (``overlapping raw Dice``); their mean ranks the rows.
REAL_PREFIXES = ("overlapping ", "touching ")


class SweepError(ValueError):
    """A sweep file that cannot be read as a sweep table, or a gate that is not in its file."""


@dataclass(frozen=True)
class SweepRow:
    """One output setting of one swept model: where it came from, its settings and its measures."""

    source: str
    settings: dict[str, float]
    measures: dict[str, float]

    def real_mean(self) -> float:
        """Mean of the real sets' Dice, the rules' choice among qualifiers."""
        real = [value for name, value in self.measures.items() if name.startswith(REAL_PREFIXES)]
        return sum(real) / len(real)


def read_sweep(path: Path) -> list[SweepRow]:
    """The rows of one sweep table written by ``amfl.overlap_sweep --out``."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip().startswith("|")]
    except (OSError, UnicodeDecodeError) as error:
        raise SweepError(f"{path}: cannot be read ({error})") from error
    if len(lines) < 3:
        raise SweepError(f"{path}: no sweep table (a header, its rule and at least one row of | cells)")
    header = cells(lines[0])
    missing = [name for name in SETTING_COLUMNS if name not in header and name not in ADDED_SETTINGS]
    if missing:
        raise SweepError(f"{path}: not an amfl.overlap_sweep table; columns {', '.join(missing)} are missing")
    if not any(name.startswith(REAL_PREFIXES) for name in header):
        raise SweepError(f"{path}: no real-pair measure (a column starting {' or '.join(map(repr, REAL_PREFIXES))})")
    rows = []
    for number, line in enumerate(lines[2:], start=3):
        values = cells(line)
        if len(values) != len(header):
            raise SweepError(f"{path}: table line {number} has {len(values)} cells, the header {len(header)}")
        try:
            numbers = dict(zip(header, map(float, values), strict=True))
        except ValueError as error:
            raise SweepError(f"{path}: table line {number} holds a cell that is not a number ({error})") from error
        rows.append(SweepRow(
            str(path), {name: numbers.get(name, ADDED_SETTINGS.get(name)) for name in SETTING_COLUMNS},
            {name: value for name, value in numbers.items() if name not in SETTING_COLUMNS},
        ))
    return rows


def cells(line: str) -> list[str]:
    """The cells of one markdown table line."""
    return [cell.strip() for cell in line.strip("|").split("|")]


def lower_is_better(name: str) -> bool:
    """Whether a lower value of measure ``name`` is the better one (the Hausdorff distance)."""
    return LOWER_IS_BETTER in name


def beats(name: str, value: float, gate: float) -> bool:
    """Whether ``value`` of measure ``name`` is strictly better than the gate's."""
    return value < gate if lower_is_better(name) else value > gate


#: What a row that ties the gate on every measure loses when ties pass.
NOTHING_BEATEN = "no measure beaten"


def lost_measures(row: SweepRow, gate: SweepRow, ties_pass: bool = False) -> list[str]:
    """The measures on which ``row`` does not beat ``gate`` (with ``ties_pass``: is worse than
    it, or :data:`NOTHING_BEATEN` when it ties every one)."""
    if row.measures.keys() != gate.measures.keys():
        raise SweepError(f"{row.source} measures {sorted(row.measures)}, the gate {sorted(gate.measures)}")
    if not ties_pass:
        return [name for name, value in row.measures.items() if not beats(name, value, gate.measures[name])]
    worse = [name for name, value in row.measures.items() if beats(name, gate.measures[name], value)]
    beaten = any(beats(name, value, gate.measures[name]) for name, value in row.measures.items())
    return worse if worse or beaten else [NOTHING_BEATEN]


def gate_row(
    rows: Sequence[SweepRow], part_share: float, piece_share: float, crossing_arms: float = 0.0, arm_reach: float = 0.0,
    chromosome_pixels: float = 0.0,
) -> SweepRow:
    """The one row of ``rows`` at the default's :data:`GATE_SETTINGS`: part and piece shares,
    crossing arms, arm reach and min chromosome pixels."""
    wanted = (part_share, piece_share, crossing_arms, arm_reach, chromosome_pixels)

    def gate_settings(row: SweepRow) -> tuple[float, ...]:
        return tuple(row.settings[name] for name in GATE_SETTINGS)

    found = [row for row in rows if gate_settings(row) == wanted]
    if len(found) != 1:
        described = ", ".join(f"{name} {value:g}" for name, value in zip(GATE_SETTINGS, wanted, strict=True))
        seen = sorted({gate_settings(row) for row in rows})
        raise SweepError(f"the gate file has {len(found)} rows at {described}, not one; "
                         f"its ({', '.join(GATE_SETTINGS)}) settings: {seen}")
    return found[0]


@dataclass(frozen=True)
class Tally:
    """Every swept row against the gate: the qualifiers (best first), the others (nearest first),
    how many rows lose each measure and the best any row reaches on it (how far a lost measure
    is from the gate)."""

    gate: SweepRow
    ties_pass: bool
    qualifiers: list[SweepRow]
    others: list[tuple[SweepRow, list[str]]]
    losses: dict[str, int]
    best: dict[str, float]


def tally(rows: Sequence[SweepRow], gate: SweepRow, ties_pass: bool = False) -> Tally:
    """Rows of ``rows`` sorted into qualifiers and the others, against ``gate``."""
    lost = [(row, lost_measures(row, gate, ties_pass)) for row in rows]
    qualifiers = sorted((row for row, names in lost if not names), key=lambda row: -row.real_mean())
    others = sorted(((row, names) for row, names in lost if names), key=lambda item: (len(item[1]), -item[0].real_mean()))
    losses = {name: sum(name in names for _, names in lost) for name in gate.measures}
    return Tally(gate, ties_pass, qualifiers, others, losses, best_values(rows, gate.measures))


def best_values(rows: Sequence[SweepRow], names: Iterable[str]) -> dict[str, float]:
    """The best value of each measure over ``rows``: the lowest Hausdorff, the highest of the rest."""
    return {name: (min if lower_is_better(name) else max)(row.measures[name] for row in rows) for name in names}


def shown_settings(rows: Sequence[SweepRow]) -> list[str]:
    """The settings columns of the report: any that varies between ``rows``, then the two shares.
    Rows of one file that differ only in a merge size or brightness would read as twins otherwise."""
    varying = [name for name in SETTING_COLUMNS
               if name not in SHARE_COLUMNS and len({row.settings[name] for row in rows}) > 1]
    return [*varying, *SHARE_COLUMNS]


def row_cells(row: SweepRow, settings: Sequence[str], lost: Sequence[str] = ()) -> list[str]:
    """A table row: the file's name, the given settings, every measure, the real mean and what it loses."""
    measures = [f"{value:.3f}" for value in row.measures.values()]
    return [Path(row.source).name, *(f"{row.settings[name]:g}" for name in settings), *measures,
            f"{row.real_mean():.3f}", ", ".join(lost) or "none"]


def report(result: Tally, nearest: int) -> str:
    """The tally as markdown: the count, the losses per measure, the qualifiers and the nearest."""
    rows = len(result.qualifiers) + len(result.others)
    settings = shown_settings([result.gate, *result.qualifiers, *(row for row, _ in result.others)])
    header = ["sweep", *(SHARE_COLUMNS.get(name, name) for name in settings), *result.gate.measures,
              "real mean", "loses"]
    terms = (f"no worse than the gate on all {len(result.gate.measures)} measures and better on at least one"
             if result.ties_pass else f"beat the gate on all {len(result.gate.measures)} measures")
    parts = [
        f"{len(result.qualifiers)} of {rows} rows qualify ({terms}).",
        "Rows that lose each measure, and the best any row reaches:\n\n" + markdown_table(
            ["measure", "rows losing it", "gate", "best row"],
            [[name, str(count), f"{result.gate.measures[name]:.3f}", f"{result.best[name]:.3f}"]
             for name, count in result.losses.items()]),
        "Gate:\n\n" + markdown_table(header, [row_cells(result.gate, settings)]),
    ]
    if result.qualifiers:
        parts.append("Qualifiers, best first:\n\n" + markdown_table(
            header, [row_cells(row, settings) for row in result.qualifiers]))
    if result.others and nearest > 0:
        parts.append(f"Nearest {min(nearest, len(result.others))} of the rest:\n\n" + markdown_table(
            header, [row_cells(row, settings, lost) for row, lost in result.others[:nearest]]))
    return "\n\n".join(parts)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m amfl.sweep_gate", description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", type=Path, nargs="+", help="sweep tables written by amfl.overlap_sweep --out")
    parser.add_argument("--gate", type=Path, required=True, help="a sweep table of the model to beat")
    parser.add_argument("--gate_shares", type=float, nargs=2, required=True, metavar=("PART", "PIECE"),
                        help="the gate's row: its min part share and cut piece share (the default's saved settings)")
    parser.add_argument("--gate_crossing_arms", type=int, choices=(0, 1), default=0,
                        help="the gate's row: whether it names crossing arms (default 0, as sweeps before stop 54)")
    parser.add_argument("--gate_arm_reach", type=int, default=0,
                        help="the gate's row: its crossing arm reach (default 0, as sweeps before stop 55)")
    parser.add_argument("--gate_chromosome_pixels", type=int, default=0,
                        help="the gate's row: its min chromosome pixels (default 0, as sweeps before stop 56)")
    parser.add_argument("--ties_pass", action="store_true",
                        help="a tie passes: a row qualifies when no worse on every measure and better on one")
    parser.add_argument("--nearest", type=int, default=5, help="how many non-qualifying rows to list (default 5)")
    parser.add_argument("--out", type=Path, default=None, help="also write the report to this markdown file")
    args = parser.parse_args(argv)
    if args.nearest < 0:
        parser.error(f"--nearest must be 0 or more; got {args.nearest}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        gate = gate_row(read_sweep(args.gate), *args.gate_shares, args.gate_crossing_arms, args.gate_arm_reach,
                        args.gate_chromosome_pixels)
        result = tally([row for path in args.sweeps for row in read_sweep(path)], gate, args.ties_pass)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    show_and_save(report(result, args.nearest), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
