"""Markdown tables, for model cards and the results tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A pipe table; cells are written as given (format numbers before)."""
    lines = [tuple(header), tuple("---" for _ in header), *map(tuple, rows)]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)


def records_table(rows: Sequence[Mapping[str, object]], digits: int = 1) -> str:
    """Rows of one shape (column name -> value) as a pipe table, numbers to ``digits`` decimals."""
    cells = [[f"{value:.{digits}f}" if isinstance(value, float) else str(value) for value in row.values()] for row in rows]
    return markdown_table(list(rows[0]), cells)


def show_and_save(text: str, out: Path | None) -> None:
    """Print a command's markdown report and, with ``--out``, write it there too (folders made)."""
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
