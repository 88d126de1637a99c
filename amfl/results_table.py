"""``results.csv`` of a batch run (:mod:`amfl.predict`), written so that an interrupted run
or a full disk loses no finished row and leaves no partial file under its final name."""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Sequence
from pathlib import Path

from amfl.outputs import remove_stale_temporaries, write_csv

CSV_NAME = "results.csv"
#: The rows written so far, while a run is going on (what an interrupted run leaves).
PARTIAL_CSV_NAME = "results.partial.csv"


class ResultsTable:
    """``results.csv`` of a run, safe on the way: a stale one (and a killed run's
    temporaries) is removed at the start, each row is appended to ``results.partial.csv``
    as soon as its file is done, and :meth:`finish` writes ``results.csv`` atomically and
    removes the partial file.

    Raises OSError when the folder cannot be created or written into."""

    def __init__(self, folder: Path, columns: Sequence[str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path, self.partial, self.columns = folder / CSV_NAME, folder / PARTIAL_CSV_NAME, columns
        self.rows: list[dict[str, object]] = []
        self.path.unlink(missing_ok=True)
        remove_stale_temporaries(folder)
        self._handle = open(self.partial, "w", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._handle, fieldnames=columns, restval="")
        self._writer.writeheader()
        self._handle.flush()
        #: Whether ``results.partial.csv`` holds every row so far.
        self.partial_complete = True

    def add(self, row: dict[str, object]) -> str | None:
        """Keep ``row`` and append it to the partial file; returns a warning when that fails
        (the rows are still written to ``results.csv`` at the end)."""
        self.rows.append(row)
        if self._handle is None:
            return None
        try:
            self._writer.writerow(row)
            self._handle.flush()
        except OSError as error:
            self.partial_complete = False
            self.close()
            return f"warning: cannot update {self.partial}: {describe_os_error(error)}; {CSV_NAME} is still written at the end"
        return None

    def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            with contextlib.suppress(OSError):
                handle.close()

    def finish(self) -> Path:
        """Write ``results.csv`` (atomically) and remove the partial file; OSError if not."""
        self.close()
        if not self.partial_complete:
            self._remove_partial()  # an incomplete partial file must not linger
        write_csv(self.rows, self.path, self.columns)
        self._remove_partial()
        return self.path

    def _remove_partial(self) -> None:
        with contextlib.suppress(OSError):
            self.partial.unlink(missing_ok=True)


def describe_os_error(error: OSError) -> str:
    """What went wrong, without the path: ``No space left on device``."""
    return error.strerror or str(error)
