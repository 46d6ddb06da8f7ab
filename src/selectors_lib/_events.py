"""Events a router emits, and the hub observers subscribe to.

Metrics and logging adapters (``selectors_lib.prometheus``, ``selectors_lib.otel``,
or a plain function) subscribe to a router's :class:`EventHub`. Emitting with no
subscriber costs one attribute check, so an unobserved router pays nothing.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Protocol

import attrs

from ._hub import EventHub

__all__ = [
    "SELECT_DURATION_BUCKETS",
    "Event",
    "EventHub",
    "FleetEvent",
    "HealthEvent",
    "LagEvent",
    "MetricsObserver",
    "Observer",
    "ReloadEvent",
    "SelectEvent",
]


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
        reason: ``manual``, ``probe``, ``lag`` or ``outlier`` on ejection.
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


@attrs.frozen
class FleetEvent:
    """This instance's place in a fleet sharing one health plane changed.

    Emitted by a health monitor with a ``health.shared`` section when its mode
    changes and whenever it applies or publishes a new health generation.

    Args:
        mode: ``leader`` (probes and publishes), ``follower`` (applies the
            leader's snapshots) or ``local`` (the store is unreachable: probes
            on its own).
        generation: The health generation now applied (0 before the first).
        leader: The instance whose snapshot was applied last ("" if none).
        fingerprint: This instance's configuration fingerprint.
        detail: Why the mode changed, for operators ("" otherwise).
        at: Unix time.
    """

    mode: str
    generation: int
    leader: str
    fingerprint: str
    detail: str
    at: float


Event = SelectEvent | HealthEvent | ReloadEvent | LagEvent | FleetEvent
Observer = Callable[[Event], None]


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


class _Healthy(Protocol):
    @property
    def healthy(self) -> bool: ...


class _WatchedRouter(Protocol):
    """What an observer reads from a router (events sit below the router: no import)."""

    @property
    def events(self) -> EventHub: ...

    @property
    def health(self) -> Mapping[str, _Healthy]: ...

    @property
    def fingerprint(self) -> str: ...


#: Reasons the library itself ejects for, always labelled as they are.
_KNOWN_REASONS = frozenset({"manual", "probe", "lag", "outlier", "unknown", "other"})
#: At most this many other distinct ejection reasons get a label value of their own.
MAX_REASON_LABELS = 16


class MetricsObserver:
    """What every metrics backend shares: which routers it watches, and one hook per event.

    A backend subclasses this and implements the ``on_*`` hooks, :meth:`set_up`
    and :meth:`forget`; :meth:`observe` subscribes it to a router (subscribe
    through :meth:`observe`, not ``router.events.subscribe``: only watched
    routers' endpoints are reported).

    The per-endpoint gauges (up, lag) always list exactly the endpoints some
    watched router serves: after a successful reload, or when a router stops
    being watched, every watched router's endpoints are recorded again and
    :meth:`forget` is called for each endpoint none of them serves any more
    (an endpoint shared by several routers stays while any serves it). Health
    and lag events about an endpoint no watched router serves are ignored, so
    a late event cannot bring a forgotten series back. Counters are left alone.
    """

    def __init__(self) -> None:
        self._routers: weakref.WeakSet[_WatchedRouter] = weakref.WeakSet()
        # Serialises reconciling with the per-endpoint gauge updates, so an event
        # racing a reload cannot re-create a series the reload just removed.
        self._endpoints_lock = threading.Lock()
        # Every endpoint id a gauge may hold a value for: what forget() cleans up.
        self._recorded: set[str] = set()
        # Endpoint ids served by the watched routers at the last reconciliation.
        self._served: frozenset[str] = frozenset()
        # Ejection reasons given a label of their own so far (see reason_label).
        self._reasons: set[str] = set()

    def observe(self, router: _WatchedRouter) -> Callable[[], None]:
        """Subscribe to ``router``'s events and record its endpoints as up or down.

        Args:
            router: The router to watch.

        Returns:
            A function that unsubscribes again and forgets the endpoints no other
            watched router serves.
        """
        # Watch, then subscribe, then record: an event arriving in between finds
        # the router watched, and a reload in between is caught by the record.
        with self._endpoints_lock:
            self._routers.add(router)
        unsubscribe = router.events.subscribe(self)
        with self._endpoints_lock:
            self._reconcile()

        def stop() -> None:
            unsubscribe()
            with self._endpoints_lock:
                self._routers.discard(router)
                self._reconcile()

        return stop

    def _states(self) -> dict[str, bool]:
        # Caller holds _endpoints_lock. An endpoint several watched routers
        # share counts as up only while none of them has it ejected: the
        # gauge's value must not depend on which router happened to be read last.
        states: dict[str, bool] = {}
        for router in list(self._routers):
            for endpoint_id, health in router.health.items():
                states[endpoint_id] = states.get(endpoint_id, True) and health.healthy
        return states

    def _reconcile(self) -> None:
        # Caller holds _endpoints_lock. Sorted, so gauges are written in a
        # deterministic order whatever the set iteration order.
        states = self._states()
        for endpoint_id, up in sorted(states.items()):
            self.set_up(endpoint_id, up)
        for endpoint_id in sorted(self._recorded - states.keys()):
            self.forget(endpoint_id)
        self._recorded = set(states)
        self._served = frozenset(states)
        self.set_fingerprints(tuple(sorted({r.fingerprint for r in list(self._routers)})))

    def _state(self, endpoint_id: str) -> bool | None:
        # Caller holds _endpoints_lock. Whether the endpoint is up across the
        # watched routers, or None when none serves it. Read from the routers
        # rather than from the event: events of two writers may arrive out of
        # order, the routers' current health cannot.
        state: bool | None = None
        for router in list(self._routers):
            health = router.health.get(endpoint_id)
            if health is not None:
                state = health.healthy and state is not False
        if state is not None:
            # A reload may have added it before its ReloadEvent arrived.
            self._recorded.add(endpoint_id)
        return state

    def reason_label(self, reason: str | None) -> str:
        """The ``reason`` label for an ejection: bounded, whoever chose the reason.

        A reason can come from outside the process (a fleet snapshot anyone with
        access to the store can publish), and every distinct label value is a
        series kept forever: past :data:`MAX_REASON_LABELS` distinct reasons
        besides the library's own, the rest count as ``other``.

        Args:
            reason: The ejection's reason (None counts as ``unknown``).
        """
        label = reason or "unknown"
        if label in _KNOWN_REASONS or label in self._reasons:
            return label
        with self._endpoints_lock:
            if len(self._reasons) < MAX_REASON_LABELS:
                self._reasons.add(label)
                return label
        return "other"

    def __call__(self, event: Event) -> None:
        """Record one event (the :data:`Observer` protocol)."""
        if isinstance(event, SelectEvent):
            self.on_select(event)
        elif isinstance(event, HealthEvent):
            self.on_health(event)
            with self._endpoints_lock:
                up = self._state(event.endpoint_id)
                if up is not None:
                    self.set_up(event.endpoint_id, up)
        elif isinstance(event, ReloadEvent):
            self.on_reload(event)
            if event.ok:
                with self._endpoints_lock:
                    self._reconcile()
        elif isinstance(event, FleetEvent):
            self.on_fleet(event)
        else:
            with self._endpoints_lock:
                # The served set answers for nearly every event without reading
                # each router's health (lag arrives once per replica per poll).
                if event.endpoint_id in self._served or self._state(event.endpoint_id) is not None:
                    self.on_lag(event)

    def on_select(self, event: SelectEvent) -> None:
        """Record a decision."""
        raise NotImplementedError

    def on_health(self, event: HealthEvent) -> None:
        """Record an ejection or a readmission (:meth:`set_up` follows)."""
        raise NotImplementedError

    def on_reload(self, event: ReloadEvent) -> None:
        """Record a reload attempt (the endpoints are reconciled after it)."""
        raise NotImplementedError

    def on_lag(self, event: LagEvent) -> None:
        """Record a replication-lag observation of an endpoint a watched router serves."""
        raise NotImplementedError

    def on_fleet(self, event: FleetEvent) -> None:
        """Record the fleet mode and health generation (default: ignore)."""

    def set_fingerprints(self, fingerprints: tuple[str, ...]) -> None:
        """Record the configuration fingerprints the watched routers serve (default: ignore).

        Called with every reconciliation: when a router is watched or stops
        being watched, and after each successful reload.
        """

    def set_up(self, endpoint_id: str, up: bool) -> None:
        """Record whether an endpoint is healthy (ejected endpoints may still serve in panic)."""
        raise NotImplementedError

    def forget(self, endpoint_id: str) -> None:
        """Stop reporting the per-endpoint gauges of an endpoint no watched router serves."""
        raise NotImplementedError
