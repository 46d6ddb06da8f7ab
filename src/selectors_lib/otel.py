"""OpenTelemetry metrics for a router, through ``opentelemetry-api`` only.

Install with ``pip install 'selectors-lib[otel]'``. The SDK (or any other
implementation) is the application's choice: pass a meter from it::

    meter = opentelemetry.metrics.get_meter("selectors_lib")
    instrument(router, meter=meter)

Instruments (OpenTelemetry conventions: dot-separated names, no ``_total``,
UCUM units, namespaced attributes):

- ``selectors.decisions`` (counter, ``{decision}``; ``selectors.rule``,
  ``selectors.endpoint``): routing decisions.
- ``selectors.failovers`` (counter, ``{decision}``; same attributes): decisions
  whose key's first choice was down; ``selectors.endpoint`` took over.
- ``selectors.panic_decisions`` (counter, ``{decision}``; ``selectors.rule``).
- ``selectors.select.duration`` (histogram, ``s``): time ``select()`` took.
- ``selectors.endpoint.ejections`` (counter, ``{ejection}``; ``selectors.endpoint``,
  ``selectors.ejection.reason``).
- ``selectors.endpoint.readmissions`` (counter, ``{readmission}``; ``selectors.endpoint``).
- ``selectors.endpoint.up`` (observable gauge, ``1``; ``selectors.endpoint``):
  1 while healthy, 0 while ejected by health (an ejected endpoint may still
  serve while its pool panics).
- ``selectors.config.reloads`` (counter, ``{reload}``; ``selectors.reload.result``:
  ``ok`` or ``failed``).
- ``selectors.replica.lag`` (observable gauge, ``By``; ``selectors.endpoint``):
  no point while the lag could not be read.
- ``selectors.config.fingerprint`` (observable gauge, ``1``; ``selectors.config.fingerprint``):
  1 for each configuration fingerprint a watched router serves.
- ``selectors.fleet.mode`` (observable gauge, ``1``; ``selectors.fleet.mode``): 1 for
  this instance's mode in a shared health plane, 0 for the other modes.
- ``selectors.fleet.mode_changes`` (counter, ``{change}``; ``selectors.fleet.mode``).
- ``selectors.fleet.health_generation`` (observable gauge, ``{generation}``).

The two gauges report exactly the endpoints the watched routers serve: after a
reload drops an endpoint, its points stop. Counters keep the attribute sets of
endpoints and rules that are gone (cumulative history stays until restart).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

try:
    from opentelemetry.metrics import CallbackOptions, Meter, Observation
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "selectors_lib.otel needs opentelemetry-api: pip install 'selectors-lib[otel]'"
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

__all__ = ["DEFAULT_BUCKETS", "OTelObserver", "instrument"]

DEFAULT_BUCKETS = SELECT_DURATION_BUCKETS

RULE = "selectors.rule"
ENDPOINT = "selectors.endpoint"
REASON = "selectors.ejection.reason"
RESULT = "selectors.reload.result"
FINGERPRINT = "selectors.config.fingerprint"
MODE = "selectors.fleet.mode"
_FLEET_MODES = ("leader", "follower", "local")


class OTelObserver(MetricsObserver):
    """An event observer that records OpenTelemetry metrics.

    Create one per meter and subscribe it to any number of routers
    (:meth:`observe`). Calling it is thread-safe.

    Args:
        meter: The meter that creates the instruments.
        buckets: Advised histogram boundaries for the latency, in seconds.
    """

    def __init__(self, meter: Meter, *, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        super().__init__()
        self.decisions = meter.create_counter(
            "selectors.decisions", unit="{decision}", description="Routing decisions."
        )
        self.failovers = meter.create_counter(
            "selectors.failovers",
            unit="{decision}",
            description="Decisions whose key's first choice was down.",
        )
        self.panics = meter.create_counter(
            "selectors.panic_decisions",
            unit="{decision}",
            description="Decisions made by a pool in panic (health ignored).",
        )
        self.duration = meter.create_histogram(
            "selectors.select.duration",
            unit="s",
            description="Time select() took.",
            explicit_bucket_boundaries_advisory=list(buckets),
        )
        self.ejections = meter.create_counter(
            "selectors.endpoint.ejections",
            unit="{ejection}",
            description="Endpoints ejected from routing.",
        )
        self.readmissions = meter.create_counter(
            "selectors.endpoint.readmissions",
            unit="{readmission}",
            description="Endpoints readmitted to routing.",
        )
        self.reloads = meter.create_counter(
            "selectors.config.reloads", unit="{reload}", description="Configuration reloads."
        )
        # Gauges are observed at collection time from the last known values:
        # the asynchronous instruments exist in every opentelemetry-api version.
        self._lock = threading.Lock()
        self._up: dict[str, int] = {}
        self._lag: dict[str, int] = {}
        meter.create_observable_gauge(
            "selectors.endpoint.up",
            callbacks=[self._observe_up],
            unit="1",
            description=(
                "1 while the endpoint is healthy, 0 while ejected by health"
                " (may still serve when its pool panics)."
            ),
        )
        meter.create_observable_gauge(
            "selectors.replica.lag",
            callbacks=[self._observe_lag],
            unit="By",
            description="Replication lag of a replica behind its master.",
        )
        self._fingerprints: tuple[str, ...] = ()
        self._fleet: FleetEvent | None = None
        meter.create_observable_gauge(
            "selectors.config.fingerprint",
            callbacks=[self._observe_fingerprints],
            unit="1",
            description="1 for each configuration fingerprint a watched router serves.",
        )
        meter.create_observable_gauge(
            "selectors.fleet.mode",
            callbacks=[self._observe_mode],
            unit="1",
            description="1 for this instance's mode in the shared health plane, 0 for others.",
        )
        meter.create_observable_gauge(
            "selectors.fleet.health_generation",
            callbacks=[self._observe_generation],
            unit="{generation}",
            description="The shared health plane's generation this instance applied last.",
        )
        self.fleet_mode_changes = meter.create_counter(
            "selectors.fleet.mode_changes",
            unit="{change}",
            description="Entries into each mode of the shared health plane.",
        )
        # Attribute dicts are reused for the hot path (one per rule/endpoint pair).
        self._attrs: dict[tuple[str, str], dict[str, str]] = {}

    def on_select(self, event: SelectEvent) -> None:
        """Count the decision and time it."""
        key = (event.rule, event.endpoint_id)
        attributes = self._attrs.get(key)
        if attributes is None:
            attributes = self._attrs.setdefault(
                key, {RULE: event.rule, ENDPOINT: event.endpoint_id}
            )
        self.decisions.add(1, attributes)
        self.duration.record(event.seconds)
        if event.failover:
            self.failovers.add(1, attributes)
        if event.panic:
            self.panics.add(1, {RULE: event.rule})

    def on_health(self, event: HealthEvent) -> None:
        """Count an ejection (by reason) or a readmission."""
        if event.healthy:
            self.readmissions.add(1, {ENDPOINT: event.endpoint_id})
        else:
            self.ejections.add(
                1, {ENDPOINT: event.endpoint_id, REASON: self.reason_label(event.reason)}
            )

    def on_reload(self, event: ReloadEvent) -> None:
        """Count the reload by result."""
        self.reloads.add(1, {RESULT: "ok" if event.ok else "failed"})

    def on_lag(self, event: LagEvent) -> None:
        """Keep the last lag for the gauge (no point while it could not be read)."""
        with self._lock:
            if event.lag_bytes is None:
                self._lag.pop(event.endpoint_id, None)
            else:
                self._lag[event.endpoint_id] = event.lag_bytes

    def on_fleet(self, event: FleetEvent) -> None:
        """Keep the mode and generation for the gauges; count a change of mode."""
        with self._lock:
            previous, self._fleet = self._fleet, event
        if previous is None or previous.mode != event.mode:
            self.fleet_mode_changes.add(1, {MODE: event.mode})

    def set_fingerprints(self, fingerprints: tuple[str, ...]) -> None:
        """Keep the fingerprints the watched routers serve for the gauge."""
        with self._lock:
            self._fingerprints = fingerprints

    def set_up(self, endpoint_id: str, up: bool) -> None:
        """Keep the endpoint's state for the up gauge."""
        with self._lock:
            self._up[endpoint_id] = 1 if up else 0

    def forget(self, endpoint_id: str) -> None:
        """Stop observing the endpoint's up and lag (no watched router serves it)."""
        with self._lock:
            self._up.pop(endpoint_id, None)
            self._lag.pop(endpoint_id, None)

    def _observe_up(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = sorted(self._up.items())
        return [Observation(value, {ENDPOINT: endpoint}) for endpoint, value in items]

    def _observe_fingerprints(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            fingerprints = self._fingerprints
        return [Observation(1, {FINGERPRINT: fingerprint}) for fingerprint in fingerprints]

    def _observe_mode(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            event = self._fleet
        if event is None:
            return []
        return [Observation(int(mode == event.mode), {MODE: mode}) for mode in _FLEET_MODES]

    def _observe_generation(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            event = self._fleet
        return [] if event is None else [Observation(event.generation)]

    def _observe_lag(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            items = sorted(self._lag.items())
        return [Observation(value, {ENDPOINT: endpoint}) for endpoint, value in items]


def instrument(router: Router, *, meter: Meter) -> OTelObserver:
    """Create the router instruments with ``meter`` and subscribe them to ``router``.

    Args:
        router: The router to measure.
        meter: The meter to create instruments with.

    Returns:
        The observer; subscribe it to further routers with :meth:`OTelObserver.observe`.
    """
    observer = OTelObserver(meter)
    observer.observe(router)
    return observer
