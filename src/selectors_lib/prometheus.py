"""Prometheus metrics for a router, through ``prometheus_client``.

Install with ``pip install 'selectors-lib[prometheus]'``. Nothing is registered
at import: metrics live in the registry you pass, so tests and multi-tenant
processes keep separate registries::

    registry = prometheus_client.CollectorRegistry()
    instrument(router, registry=registry)

Metrics (Prometheus conventions: base units, ``_total`` on counters):

- ``selectors_decisions_total{rule, endpoint}`` (counter): routing decisions.
- ``selectors_failovers_total{rule, endpoint}`` (counter): decisions whose key's
  first choice was down; ``endpoint`` is the replica that took over.
- ``selectors_panic_decisions_total{rule}`` (counter): decisions by a pool in panic.
- ``selectors_select_duration_seconds`` (histogram): time ``select()`` took.
- ``selectors_ejections_total{endpoint, reason}`` (counter): endpoints ejected.
- ``selectors_readmissions_total{endpoint}`` (counter): endpoints readmitted.
- ``selectors_endpoint_up{endpoint}`` (gauge): 1 while healthy, 0 while ejected
  by health (an ejected endpoint may still serve while its pool panics).
- ``selectors_config_reloads_total{result}`` (counter): ``ok`` or ``failed``.
- ``selectors_config_last_reload_successful`` (gauge): 0 after a failed reload,
  1 otherwise.
- ``selectors_replica_lag_bytes{endpoint}`` (gauge): replication lag; NaN when
  it could not be read.
- ``selectors_config_fingerprint_info{fingerprint}`` (gauge, always 1): the
  configuration fingerprint of each watched router; instances of a fleet in
  sync show the same one.
- ``selectors_fleet_mode{mode}`` (gauge): 1 for this instance's mode in a shared
  health plane (``leader``, ``follower``, ``local``), 0 for the others.
- ``selectors_fleet_mode_changes_total{mode}`` (counter): entries into each mode
  (alert on ``local``: the store is unreachable and instances probe on their own).
- ``selectors_fleet_health_generation`` (gauge): the health generation applied last.

Decisions are noted per request and counted in batches: when a scrape
collects the registry, when :meth:`PrometheusObserver.fold` is called, and
every :data:`FOLD_EVERY` decisions. A ``prometheus_client`` observation takes a
lock and walks the histogram's buckets; per request that cost as much as the
decision itself. A scrape never misses a decision made before it.

Label values come from the configuration (rule names, endpoint ids), never
from requests, so cardinality is bounded by the configuration. The two
per-endpoint gauges list exactly the endpoints the watched routers serve: a
reload that drops an endpoint removes its series. Counters keep the series of
endpoints and rules that are gone (Prometheus convention: a counter's history
stays until the process restarts).
"""

from __future__ import annotations

import bisect
import collections
import contextlib
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "selectors_lib.prometheus needs prometheus_client: pip install 'selectors-lib[prometheus]'"
    ) from None

from ._events import (
    SELECT_DURATION_BUCKETS,
    FleetEvent,
    HealthEvent,
    LagEvent,
    MetricsObserver,
    ReloadEvent,
    SelectEvent,
)
from ._router import Router

__all__ = ["DEFAULT_BUCKETS", "FOLD_EVERY", "PrometheusObserver", "instrument"]

#: Decisions noted before they are counted without waiting for a scrape.
FOLD_EVERY = 4096

_FLEET_MODES = ("leader", "follower", "local")

DEFAULT_BUCKETS = SELECT_DURATION_BUCKETS


class PrometheusObserver(MetricsObserver):
    """An event observer that keeps Prometheus metrics.

    One observer registers its metrics once in ``registry``; subscribe it to
    as many routers as share that registry (:meth:`observe`). Calling it is
    thread-safe (``prometheus_client`` metrics are).

    Args:
        registry: Where the metrics are registered.
        namespace: Prefix of every metric name.
        buckets: Upper bounds of the latency histogram, in seconds.

    Raises:
        ValueError: A metric of the same name is already in ``registry``
            (one observer per registry and namespace).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        namespace: str = "selectors",
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__()
        self._pending: collections.deque[SelectEvent] = collections.deque()
        # Registered before the metrics: a scrape collects it first, so the
        # decisions noted until then are counted in what it reads.
        registry.register(_Fold(self))

        def name(suffix: str) -> str:
            return f"{namespace}_{suffix}"

        # prometheus_client appends _total to counters itself.
        self.decisions = Counter(
            name("decisions"),
            "Routing decisions, by winning rule and chosen endpoint.",
            ("rule", "endpoint"),
            registry=registry,
        )
        self.failovers = Counter(
            name("failovers"),
            "Decisions whose key's first choice was down; endpoint is the replica that took over.",
            ("rule", "endpoint"),
            registry=registry,
        )
        self.panics = Counter(
            name("panic_decisions"),
            "Decisions made by a pool in panic (too few live endpoints, health ignored).",
            ("rule",),
            registry=registry,
        )
        self.duration = Histogram(
            name("select_duration_seconds"),
            "Time select() took, in seconds.",
            registry=registry,
            buckets=tuple(buckets),
        )
        self.ejections = Counter(
            name("ejections"),
            "Endpoints ejected from routing, by reason (manual, probe, lag).",
            ("endpoint", "reason"),
            registry=registry,
        )
        self.readmissions = Counter(
            name("readmissions"),
            "Endpoints readmitted to routing.",
            ("endpoint",),
            registry=registry,
        )
        self.up = Gauge(
            name("endpoint_up"),
            "1 while the endpoint is healthy, 0 while ejected by health"
            " (may still serve when its pool panics).",
            ("endpoint",),
            registry=registry,
        )
        self.reloads = Counter(
            name("config_reloads"),
            "Configuration reloads, by result (ok, failed).",
            ("result",),
            registry=registry,
        )
        self.last_reload_ok = Gauge(
            name("config_last_reload_successful"),
            "0 after a failed configuration reload, 1 otherwise.",
            registry=registry,
        )
        self.lag = Gauge(
            name("replica_lag_bytes"),
            "Replication lag of a replica behind its master (NaN: could not be read).",
            ("endpoint",),
            registry=registry,
        )
        self.fingerprint = Gauge(
            name("config_fingerprint_info"),
            "1 for each configuration fingerprint a watched router serves.",
            ("fingerprint",),
            registry=registry,
        )
        self.fleet_mode = Gauge(
            name("fleet_mode"),
            "1 for this instance's mode in the shared health plane, 0 for the others.",
            ("mode",),
            registry=registry,
        )
        self.fleet_mode_changes = Counter(
            name("fleet_mode_changes"),
            "Entries into each mode of the shared health plane (local: store unreachable).",
            ("mode",),
            registry=registry,
        )
        self.fleet_generation = Gauge(
            name("fleet_health_generation"),
            "The shared health plane's generation this instance applied last.",
            registry=registry,
        )
        self._fingerprints: tuple[str, ...] = ()
        self._fleet_mode = ""
        # Resolving label children takes a lock and a tuple build in
        # prometheus_client; decisions are the hot path, so keep the children.
        self._decision_children: dict[tuple[str, str], Callable[[float], None]] = {}
        self._bounds = [*sorted(float(b) for b in buckets if b != math.inf), math.inf]
        # Start the reload counters at zero so rate() and alerts see both series.
        self.reloads.labels("ok")
        self.reloads.labels("failed")
        # A router starts from a configuration that loaded: not a failure to alert on.
        self.last_reload_ok.set(1)

    def on_select(self, event: SelectEvent) -> None:
        """Note the decision (counted at the next :meth:`fold`)."""
        pending = self._pending
        pending.append(event)
        if len(pending) >= FOLD_EVERY:
            self.fold()

    def fold(self) -> None:
        """Count the decisions noted so far (a scrape of the registry does it first)."""
        pending = self._pending
        decisions: dict[tuple[str, str], int] = {}
        failovers: dict[tuple[str, str], int] = {}
        panics: dict[str, int] = {}
        seconds: list[float] = []
        # popleft, not a swap of lists: another thread's decision noted
        # meanwhile is counted now or in the next fold, never lost.
        take = pending.popleft
        while pending:
            try:
                event = take()
            except IndexError:  # another thread folded the last one
                break
            key = (event.rule, event.endpoint_id)
            decisions[key] = decisions.get(key, 0) + 1
            seconds.append(event.seconds)
            if event.failover:
                failovers[key] = failovers.get(key, 0) + 1
            if event.panic:
                panics[event.rule] = panics.get(event.rule, 0) + 1
        for key, count in decisions.items():
            inc = self._decision_children.get(key)
            if inc is None:
                inc = self._decision_children.setdefault(key, self.decisions.labels(*key).inc)
            inc(count)
        for key, count in failovers.items():
            self.failovers.labels(*key).inc(count)
        for rule, count in panics.items():
            self.panics.labels(rule).inc(count)
        if seconds:
            observe_all(self.duration, self._bounds, seconds)

    def on_health(self, event: HealthEvent) -> None:
        """Count an ejection (by reason) or a readmission."""
        if event.healthy:
            self.readmissions.labels(event.endpoint_id).inc()
        else:
            self.ejections.labels(event.endpoint_id, self.reason_label(event.reason)).inc()

    def on_reload(self, event: ReloadEvent) -> None:
        """Count the reload by result."""
        self.reloads.labels("ok" if event.ok else "failed").inc()
        self.last_reload_ok.set(1 if event.ok else 0)

    def on_lag(self, event: LagEvent) -> None:
        """Set the lag gauge (NaN when it could not be read)."""
        value = math.nan if event.lag_bytes is None else float(event.lag_bytes)
        self.lag.labels(event.endpoint_id).set(value)

    def on_fleet(self, event: FleetEvent) -> None:
        """Set the mode and generation gauges; count a change of mode."""
        if event.mode != self._fleet_mode:
            self._fleet_mode = event.mode
            self.fleet_mode_changes.labels(event.mode).inc()
            for mode in _FLEET_MODES:
                self.fleet_mode.labels(mode).set(1 if mode == event.mode else 0)
        self.fleet_generation.set(event.generation)

    def set_fingerprints(self, fingerprints: tuple[str, ...]) -> None:
        """List exactly the fingerprints the watched routers serve."""
        for gone in set(self._fingerprints) - set(fingerprints):
            with contextlib.suppress(KeyError):
                self.fingerprint.remove(gone)
        for fingerprint in fingerprints:
            self.fingerprint.labels(fingerprint).set(1)
        self._fingerprints = fingerprints

    def set_up(self, endpoint_id: str, up: bool) -> None:
        """Set the endpoint's up gauge."""
        self.up.labels(endpoint_id).set(1 if up else 0)

    def forget(self, endpoint_id: str) -> None:
        """Remove the endpoint's up and lag series (no watched router serves it)."""
        for gauge in (self.up, self.lag):
            # prometheus_client before 0.22 raises KeyError for a series that
            # does not exist (the lag one, for an endpoint never measured).
            with contextlib.suppress(KeyError):
                gauge.remove(endpoint_id)


def instrument(
    router: Router, *, registry: CollectorRegistry, namespace: str = "selectors"
) -> PrometheusObserver:
    """Register the router metrics in ``registry`` and subscribe them to ``router``.

    Args:
        router: The router to measure.
        registry: Where to register (pass ``prometheus_client.REGISTRY`` for
            the process-wide default).
        namespace: Prefix of every metric name.

    Returns:
        The observer; subscribe it to further routers with
        :meth:`PrometheusObserver.observe`.

    Raises:
        ValueError: The metrics are already registered in ``registry``.
    """
    observer = PrometheusObserver(registry, namespace=namespace)
    observer.observe(router)
    return observer


class _Fold:
    """A collector with no metrics of its own: collecting it folds the noted decisions."""

    def __init__(self, observer: PrometheusObserver) -> None:
        self._observer = observer

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        self._observer.fold()
        return iter(())


def observe_all(histogram: Any, bounds: Sequence[float], values: list[float]) -> None:
    """``histogram.observe(v)`` for each of ``values``, with one update per bucket.

    prometheus_client keeps one (non-cumulative) count per bucket and the sum;
    a value counts in the first bucket whose bound it does not exceed. Where
    those internals differ (another version), each value is observed.

    Args:
        histogram: An unlabelled ``prometheus_client.Histogram``.
        bounds: Its upper bounds, sorted, ``+Inf`` last.
        values: The observations.
    """
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if not isinstance(buckets, list) or len(buckets) != len(bounds) or total is None:
        for value in values:
            histogram.observe(value)
        return
    counts = [0] * len(bounds)
    where = bisect.bisect_left
    for value in values:
        counts[where(bounds, value)] += 1
    for bucket, count in zip(buckets, counts, strict=True):
        if count:
            bucket.inc(count)
    total.inc(math.fsum(values))
