"""Events a router emits, and the hub observers subscribe to.

Metrics and logging adapters (``selectors_lib.prometheus``, ``selectors_lib.otel``,
or a plain function) subscribe to a router's :class:`EventHub`. Emitting with no
subscriber costs one attribute check, so an unobserved router pays nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import attrs

__all__ = [
    "Event",
    "EventHub",
    "HealthEvent",
    "LagEvent",
    "Observer",
    "ReloadEvent",
    "SelectEvent",
]

_log = logging.getLogger("selectors_lib")


@attrs.frozen
class SelectEvent:
    """One routing decision.

    Args:
        rule: Name of the winning rule.
        endpoint_id: The endpoint chosen.
        failover: True when the key's first choice was down and another took it.
        panic: True when the pool ignored health for lack of live replicas.
        seconds: Time ``select()`` took.
    """

    rule: str
    endpoint_id: str
    failover: bool
    panic: bool
    seconds: float


@attrs.frozen
class HealthEvent:
    """An endpoint was ejected or readmitted.

    Args:
        endpoint_id: The endpoint.
        healthy: True on readmission, False on ejection.
        reason: ``manual``, ``probe`` or ``lag`` on ejection.
        detail: Free text for operators.
        at: Unix time of the change.
    """

    endpoint_id: str
    healthy: bool
    reason: str | None
    detail: str
    at: float


@attrs.frozen
class ReloadEvent:
    """A configuration reload finished.

    Args:
        ok: True when the new configuration now serves.
        source: Where it came from.
        error: The error text (every issue with its path) when it failed.
        at: Unix time.
    """

    ok: bool
    source: str | None
    error: str | None
    at: float


@attrs.frozen
class LagEvent:
    """A replication-lag observation for one endpoint.

    Args:
        endpoint_id: The replica.
        lag_bytes: Bytes behind the master, or None when it could not be read.
        at: Unix time.
    """

    endpoint_id: str
    lag_bytes: int | None
    at: float


Event = SelectEvent | HealthEvent | ReloadEvent | LagEvent
Observer = Callable[[Event], None]


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
                _log.exception("selectors_lib observer %r failed", observer)
