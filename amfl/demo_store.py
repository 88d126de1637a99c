"""Batches of what sessions keep, each under a random token that the session's ``gr.State``
holds (the state itself stays a short string): bounded in age and in size, whatever the
number of sessions. The crop view keeps packed pictures (``amfl.demo_views.KeptResults``),
the metaphase view file paths and text (``amfl.demo_metaphase.KeptMetaphases``)."""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class TokenBatches(Generic[T]):
    """Batches of items under random tokens. A batch is dropped ``max_age_s`` after it was
    kept, or by :meth:`discard` (a session state's ``delete_callback``); while all batches
    together are over ``limit`` (as :meth:`size` measures a batch), the least recently
    used is dropped first, never the only one. Thread-safe."""

    def __init__(self, limit: int, max_age_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.max_age_s, self.clock = limit, max_age_s, clock
        self._batches: OrderedDict[str, tuple[float, list[T]]] = OrderedDict()
        self._lock = threading.Lock()

    def size(self, items: Sequence[T]) -> int:
        """What a batch counts against ``limit``: its number of items, unless overridden."""
        return len(items)

    def store(self, items: Sequence[T], replacing: str | None = None) -> str:
        """Keep ``items`` under a new token, dropping the batch ``replacing`` (the session's
        previous one); no token ("") and nothing kept for no items."""
        token = secrets.token_urlsafe(16) if items else ""
        with self._lock:
            self._batches.pop(replacing or "", None)
            if token:
                self._batches[token] = (self.clock(), list(items))
            self._drop_old()
        return token

    def batch(self, token: str | None) -> list[T]:
        """The items kept under ``token`` (now the most recently used); none once dropped."""
        with self._lock:
            self._drop_old()
            if token not in self._batches:
                return []
            self._batches.move_to_end(token)
            return self._batches[token][1]

    def discard(self, token: str | None) -> None:
        with self._lock:
            self._batches.pop(token or "", None)

    def total(self) -> int:
        """What all batches count against ``limit``."""
        with self._lock:
            return self._total()

    def _total(self) -> int:
        return sum(self.size(items) for _, items in self._batches.values())

    def _drop_old(self) -> None:
        cutoff = self.clock() - self.max_age_s
        for token in [token for token, (kept_at, _) in self._batches.items() if kept_at < cutoff]:
            del self._batches[token]
        while len(self._batches) > 1 and self._total() > self.limit:
            self._batches.popitem(last=False)
