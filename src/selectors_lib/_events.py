"""Events a router emits, and the hub observers subscribe to.

Metrics and logging adapters (``selectors_lib.prometheus``, ``selectors_lib.otel``,
or a plain function) subscribe to a router's :class:`EventHub`. Emitting with no
subscriber costs one attribute check, so an unobserved router pays nothing.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ._router import Router

__all__ = [
    "SELECT_DURATION_BUCKETS",
    "Event",
    "EventHub",
    "HealthEvent",
    "LagEvent",
    "MetricsObserver",
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


#: Latency buckets for ``select()``, in seconds: it takes microseconds, so the
#: backends' default buckets (5 ms and up) would put every observation in the first.
SELECT_DURATION_BUCKETS: tuple[float, ...] = (
    1e-6,
    2.5e-6,
    5e-6,
    1e-5,
    2.5e-5,
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    5e-3,
    1e-2,
    0.1,
)


class MetricsObserver:
    """What every metrics backend shares: which routers it watches, and one hook per event.

    A backend subclasses this and implements the ``on_*`` hooks and
    :meth:`set_up`; :meth:`observe` subscribes it to a router. After a
    successful reload every watched router's endpoints are recorded again, since
    a reload may add or remove endpoints.
    """

    def __init__(self) -> None:
        self._routers: weakref.WeakSet[Router] = weakref.WeakSet()

    def observe(self, router: Router) -> Callable[[], None]:
        """Subscribe to ``router``'s events and record its endpoints as up or down.

        Args:
            router: The router to watch.

        Returns:
            A function that unsubscribes again.
        """
        self._routers.add(router)
        self._record_health(router)
        unsubscribe = router.events.subscribe(self)

        def stop() -> None:
            self._routers.discard(router)
            unsubscribe()

        return stop

    def _record_health(self, router: Router) -> None:
        for endpoint_id, health in sorted(router.health.items()):
            self.set_up(endpoint_id, health.healthy)

    def __call__(self, event: Event) -> None:
        """Record one event (the :data:`Observer` protocol)."""
        if isinstance(event, SelectEvent):
            self.on_select(event)
        elif isinstance(event, HealthEvent):
            self.on_health(event)
            self.set_up(event.endpoint_id, event.healthy)
        elif isinstance(event, ReloadEvent):
            self.on_reload(event)
            if event.ok:
                for router in list(self._routers):
                    self._record_health(router)
        else:
            self.on_lag(event)

    def on_select(self, event: SelectEvent) -> None:
        """Record a decision."""
        raise NotImplementedError

    def on_health(self, event: HealthEvent) -> None:
        """Record an ejection or a readmission (:meth:`set_up` follows)."""
        raise NotImplementedError

    def on_reload(self, event: ReloadEvent) -> None:
        """Record a reload attempt."""
        raise NotImplementedError

    def on_lag(self, event: LagEvent) -> None:
        """Record a replication-lag observation."""
        raise NotImplementedError

    def set_up(self, endpoint_id: str, up: bool) -> None:
        """Record whether an endpoint takes traffic."""
        raise NotImplementedError
