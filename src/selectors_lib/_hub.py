"""The observer hub a router emits its events through.

Kept apart from the event classes (``_events``): every router owns a hub, but
most processes never build an event, so importing the package does not create
those classes (see docs/scale.md, "Import cost").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._events import Event, Observer

__all__ = ["EventHub"]


def _log_failure(observer: object) -> None:
    import logging  # only when an observer fails: routing never needs it

    logging.getLogger("selectors_lib").exception("selectors_lib observer %r failed", observer)


class EventHub:
    """Fan events out to subscribers.

    Subscribing and unsubscribing swap an immutable tuple, so emitting never
    takes a lock. An observer that raises is logged and skipped: observability
    must never break routing.
    """

    __slots__ = ("_lock", "observers")

    def __init__(self) -> None:
        self.observers: tuple[Observer, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        """Add ``observer``; return a function that removes it again."""
        with self._lock:
            self.observers = (*self.observers, observer)

        def unsubscribe() -> None:
            with self._lock:
                self.observers = tuple(o for o in self.observers if o is not observer)

        return unsubscribe

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber."""
        for observer in self.observers:
            try:
                observer(event)
            except Exception:
                _log_failure(observer)
