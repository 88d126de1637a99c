"""Markdown tables, for model cards and the results tables."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A pipe table; cells are written as given (format numbers before)."""
    lines = [tuple(header), tuple("---" for _ in header), *map(tuple, rows)]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
