"""Passive outlier detection: replicas that fail real requests are ejected for a while.

The same machinery as active health: a :class:`~selectors_lib.health.HealthTracker`
counts consecutive failures with the configured threshold, and ejections go
through ``Router.set_health`` (reason ``outlier``), so the pools' panic
threshold, the key's failover order and the :class:`~selectors_lib.HealthEvent`
stream (metrics, logs) are the very ones probes use. Only the affected keys
move, each to its next replica, and they come back when the ejection ends.

Nothing proxied reaches an ejected replica, so nothing passive can readmit it:
like Envoy's ``base_ejection_time``, an ejection ends after ``ejection_time``,
doubled for each ejection in a row (up to ``max_ejection_time``); a replica
that succeeds once after its return starts from zero again. An active health
monitor running beside it sees these ejections as someone else's and keeps
its own verdicts underneath.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from selectors_lib._pool import EndpointHealth
from selectors_lib._router import Router
from selectors_lib.health._state import HealthTracker, Observation, Policy

from ._settings import OutlierSettings

__all__ = ["OUTLIER_REASON", "OutlierDetector"]

#: The ``reason`` of an ejection by outlier detection (in health and events).
OUTLIER_REASON = "outlier"
_GROUP = "passive"
_log = logging.getLogger("selectors_lib")


class OutlierDetector:
    """Eject replicas after consecutive failures of proxied requests.

    Lives on the gateway's event loop (not thread-safe); its ejections apply
    to the whole router.

    Args:
        router: The router whose health is changed.
        settings: Thresholds and ejection times.
        clock: Wall clock for health timestamps.
    """

    def __init__(
        self,
        router: Router,
        settings: OutlierSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.router = router
        self.settings = settings
        self._clock = clock
        self._tracker = HealthTracker(Policy(eject_after=settings.consecutive_failures))
        # Endpoints with a failure streak or an ejection: successes of every
        # other endpoint cost one set lookup.
        self._suspect: set[str] = set()
        self._ejections: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def policy(self, consecutive_failures: int) -> None:
        """Apply a new threshold (after a reload); streaks so far are kept."""
        self._tracker.policy = Policy(eject_after=consecutive_failures)

    def success(self, endpoint_id: str) -> None:
        """Record a request the replica answered well."""
        if endpoint_id in self._suspect:
            self._observe(endpoint_id, Observation(True, OUTLIER_REASON))
            state = self._tracker.state(endpoint_id)
            if state.healthy and state.bad_streak == 0:
                self._suspect.discard(endpoint_id)
                self._ejections.pop(endpoint_id, None)

    def failure(self, endpoint_id: str, detail: str) -> None:
        """Record a failed request (connect failure, reset, timeout or 5xx)."""
        self._suspect.add(endpoint_id)
        self._observe(endpoint_id, Observation(False, OUTLIER_REASON, detail))

    def _observe(self, endpoint_id: str, obs: Observation) -> None:
        now = self._clock()
        result = self._tracker.observe_round({_GROUP: {endpoint_id: obs}}, now, churn_groups=())
        for changed_id, state in result.changed:
            if state.healthy:
                continue
            count = self._ejections.get(changed_id, 0) + 1
            self._ejections[changed_id] = count
            # The exponent is capped: a replica down for days is ejected over
            # a thousand times, and 2.0 ** 1024 overflows a float.
            duration = min(
                self.settings.ejection_time * 2 ** min(count - 1, 64),
                self.settings.max_ejection_time,
            )
            _log.warning(
                "outlier detection ejects %s for %gs: %s", changed_id, duration, state.detail
            )
            self.router.set_health({changed_id: state.to_health()})
            self._schedule(changed_id, duration)

    def _schedule(self, endpoint_id: str, delay: float) -> None:
        old = self._timers.pop(endpoint_id, None)
        if old is not None:
            old.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - always called from the gateway's loop
            return
        self._timers[endpoint_id] = loop.call_later(delay, self._readmit, endpoint_id)

    def _readmit(self, endpoint_id: str) -> None:
        self._timers.pop(endpoint_id, None)
        now = self._clock()
        self._tracker.unpin(endpoint_id, now)
        current = self.router.health.get(endpoint_id)
        # Only undo our own ejection: one by an operator or a probe stands.
        if current is not None and not current.healthy and current.reason == OUTLIER_REASON:
            _log.info("outlier ejection of %s ends", endpoint_id)
            self.router.set_health(
                {endpoint_id: EndpointHealth(True, None, "outlier ejection ended", now)}
            )

    def close(self) -> None:
        """Lift this detector's ejections now: nothing will end them once it stops."""
        for endpoint_id in sorted(self._timers):
            self._timers[endpoint_id].cancel()
            self._readmit(endpoint_id)
        self._timers.clear()
