"""Writes held to the end of the event loop's turn, then made together.

On loopback the peer of every write is a process the kernel wakes for it.
Writes made one after another at the end of a turn reach a peer that is
already awake for the first: it reads several in one wakeup. Both sides of
the gateway use this: serve's server for its answers (:mod:`._http1`), the
upstream connections for their requests (:mod:`._upstream`).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["Flushable", "TurnEnd"]


class Flushable(Protocol):
    """Something holding output back until :meth:`flush`."""

    def flush(self) -> None:
        """Write what waits now."""


class TurnEnd:
    """Flush what was added, once, at the end of the event loop's current turn.

    Args:
        loop: The event loop.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due: list[Flushable] = []

    def add(self, item: Flushable) -> None:
        """Flush ``item`` at the end of this turn (add it once per turn)."""
        due = self._due
        due.append(item)
        if len(due) == 1:
            self._loop.call_soon(self._flush_all)

    def _flush_all(self) -> None:
        due, self._due = self._due, []
        for item in due:
            item.flush()
