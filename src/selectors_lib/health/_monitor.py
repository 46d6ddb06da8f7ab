"""The monitor: runs probes at an interval and applies their verdicts to a router.

Requests never wait for it: probes run in their own threads (or tasks), the
verdicts go through :class:`~selectors_lib.health.HealthTracker`, and every
change of a round reaches the router as one ``Router.set_health`` call, which
swaps a new immutable snapshot in. ``select()`` keeps reading the snapshot it
started with.

The router's own health is the source of truth for people: an endpoint that
someone else ejected (``router.mark_down``) is pinned down and never readmitted
by probes; when someone readmits an endpoint (``router.mark_up``), the probes
start counting afresh for it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs

from selectors_lib._background import cancel_task
from selectors_lib._events import LagEvent
from selectors_lib._pool import EndpointHealth
from selectors_lib._router import Router

from ._probes import HttpProbe, Probe, ProbeResult, describe, failed
from ._settings import HealthSettings, HttpProbeSettings, RedisLagProbeSettings
from ._state import EndpointState, HealthTracker, Observation, Policy

if TYPE_CHECKING:
    from ._shared import FleetStatus, SharedPlane

__all__ = ["HealthMonitor", "MonitorStatus", "ProbeStatus", "build_probes"]

_log = logging.getLogger("selectors_lib.health")

#: A probe that has not returned after this many timeouts counts as failed for
#: all its endpoints. Its own timeouts (connect, then read; master, then
#: replicas) should always fire first; this is the backstop for a probe that hangs.
GUARD_FACTOR = 5


def build_probes(settings: HealthSettings) -> tuple[Probe, ...]:
    """Build the probes a health section describes.

    Args:
        settings: The validated ``health`` section.

    Returns:
        One probe per configured probe, in order.

    Raises:
        ImportError: A Redis probe is configured and redis-py is missing (names the extra).
    """
    probes: list[Probe] = []
    for spec in settings.probes:
        if isinstance(spec, RedisLagProbeSettings):
            from ._redis import RedisLagProbe  # only now: redis-py is an optional extra

            probes.append(RedisLagProbe(spec))
        elif isinstance(spec, HttpProbeSettings):
            probes.append(HttpProbe(spec))
    return tuple(probes)


@attrs.frozen
class ProbeStatus:
    """A probe's latest round.

    Args:
        name: The probe.
        master_ok: Whether its master could be read (None for probes without one).
        detail: What went wrong with the round as a whole, if anything.
        churn: True when all its replicas were bad at once (master churn).
        lag: ``(endpoint id, lag in bytes or None)`` for lag probes.
    """

    name: str
    master_ok: bool | None = None
    detail: str = ""
    churn: bool = False
    lag: tuple[tuple[str, int | None], ...] = ()


@attrs.frozen
class MonitorStatus:
    """What the monitor knows after its latest round.

    Args:
        rounds: Rounds completed.
        at: Time of the latest round (the monitor's clock).
        probes: Each probe's latest round, in config order.
        endpoints: ``(endpoint id, state)`` for each observed endpoint, sorted by id.
    """

    rounds: int = 0
    at: float = 0.0
    probes: tuple[ProbeStatus, ...] = ()
    endpoints: tuple[tuple[str, EndpointState], ...] = ()

    @property
    def churning(self) -> tuple[str, ...]:
        """Probes whose replicas all lagged or failed together in the latest round."""
        return tuple(p.name for p in self.probes if p.churn)

    @property
    def master_unreachable(self) -> tuple[str, ...]:
        """Probes whose master could not be read in the latest round."""
        return tuple(p.name for p in self.probes if p.master_ok is False)

    def endpoint(self, endpoint_id: str) -> EndpointState:
        """The state of one observed endpoint.

        Raises:
            KeyError: The endpoint is not observed by any probe.
        """
        return dict(self.endpoints)[endpoint_id]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (for a status page or ``/health`` of the gateway itself)."""
        return {
            "rounds": self.rounds,
            "at": self.at,
            "churning": list(self.churning),
            "master_unreachable": list(self.master_unreachable),
            "probes": [
                {
                    "name": p.name,
                    "master_ok": p.master_ok,
                    "detail": p.detail,
                    "churn": p.churn,
                    "lag": dict(p.lag),
                }
                for p in self.probes
            ],
            "endpoints": {
                endpoint_id: {
                    "healthy": state.healthy,
                    "ejected": state.ejected,
                    "pinned": state.pinned,
                    "reason": state.reason,
                    "detail": state.detail,
                    "since": state.since,
                    "lag_bytes": state.lag_bytes,
                }
                for endpoint_id, state in self.endpoints
            },
        }


class HealthMonitor:
    """Probe endpoints at an interval; eject and readmit them in the router.

    Run it in a background thread (:meth:`start`/:meth:`stop`, or ``with``), as
    an asyncio task (:meth:`run`, or ``async with``), or drive rounds yourself
    with :meth:`run_once`/:meth:`arun_once`. Use one style per monitor.

    Args:
        router: The router whose endpoints are probed.
        settings: The ``health`` section (``router.config.health``).
        probes: Probes to use instead of building them from ``settings``
            (custom probes, or fakes in tests).
        clock: Wall clock for timestamps in states and events (``time.time``).
    """

    def __init__(
        self,
        router: Router,
        settings: HealthSettings,
        *,
        probes: Sequence[Probe] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.router = router
        self.settings = settings
        self.probes: tuple[Probe, ...] = (
            tuple(probes) if probes is not None else build_probes(settings)
        )
        names = [p.name for p in self.probes]
        if len(set(names)) != len(names):
            raise ValueError(f"probe names must be unique, got {names}")
        self._clock = clock
        self._tracker = HealthTracker(Policy(settings.eject_after, settings.readmit_after))
        # What this monitor last told the router, per endpoint: anything else the
        # router holds was set by someone else.
        self._applied: dict[str, EndpointHealth] = {}
        self._round_lock = threading.Lock()
        self._status = MonitorStatus()
        self._master_down: set[str] = set()
        # The latest check per probe name, threaded and asyncio: never two at once.
        self._pending: dict[str, Future[ProbeResult]] = {}
        self._atasks: dict[str, asyncio.Task[ProbeResult]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._plane: SharedPlane | None = None
        if settings.shared is not None:
            from ._shared import SharedPlane  # only now: it needs redis-py

            self._plane = SharedPlane(self, settings.shared)

    @classmethod
    def from_router(
        cls,
        router: Router,
        *,
        probes: Sequence[Probe] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> HealthMonitor:
        """Build a monitor from the ``health`` section of the router's configuration.

        Raises:
            ValueError: The configuration has no ``health`` section.
            ImportError: A Redis probe is configured and redis-py is missing.
        """
        settings = router.config.health
        if not isinstance(settings, HealthSettings):
            raise ValueError("the router's configuration has no 'health' section")
        return cls(router, settings, probes=probes, clock=clock)

    @property
    def status(self) -> MonitorStatus:
        """The latest round's status (safe to read from any thread)."""
        return self._status

    @property
    def fleet(self) -> FleetStatus | None:
        """This instance's place in the fleet's shared health plane (None without one)."""
        return None if self._plane is None else self._plane.status

    # -- one round -------------------------------------------------------------------

    def run_once(self) -> MonitorStatus:
        """Run every probe once (concurrently), blocking, and apply the verdicts.

        Returns:
            The new status.
        """
        if self._plane is not None:
            # The plane decides: probe (leader, local) or follow the leader's verdicts.
            return self._plane.run_round(self._probe_round)
        return self._probe_round()

    def _probe_round(self) -> MonitorStatus:
        with self._round_lock:
            return self._apply(self._collect())

    async def arun_once(self) -> MonitorStatus:
        """Run every probe once on the event loop and apply the verdicts.

        Like :meth:`run_once`: a probe whose previous check has not returned is
        not started again (its endpoints count as failed), and the round waits
        at most ``GUARD_FACTOR * timeout`` for the others.

        Returns:
            The new status.
        """
        if self._plane is not None:
            return await self._plane.arun_round(self._aprobe_round)
        return await self._aprobe_round()

    async def _aprobe_round(self) -> MonitorStatus:
        loop = asyncio.get_running_loop()
        guard = self.settings.timeout * GUARD_FACTOR
        submitted: list[tuple[Probe, asyncio.Task[ProbeResult] | None]] = []
        for probe in self.probes:
            running = self._atasks.get(probe.name)
            # A task of another (closed) loop can never finish: forget it.
            if running is not None and not running.done() and running.get_loop() is loop:
                submitted.append((probe, None))
                continue
            task = loop.create_task(self._acheck(probe), name=f"selectors-lib-probe-{probe.name}")
            self._atasks[probe.name] = task
            submitted.append((probe, task))
        tasks = [task for _, task in submitted if task is not None]
        if tasks:
            # Not wait_for: a check past the guard keeps running (and keeps its slot)
            # instead of being cancelled and started again next round, piling up.
            await asyncio.wait(tasks, timeout=guard)
        else:
            # Every probe is still busy: yield anyway, so that back-to-back rounds
            # let the pending checks run (and finish) in between.
            await asyncio.sleep(0)
        results: list[tuple[Probe, ProbeResult]] = []
        for probe, pending in submitted:
            if pending is None:
                result = failed(probe, "previous check still running")
            elif not pending.done():
                result = failed(probe, f"no answer within {guard:g}s")
            elif pending.cancelled():
                result = failed(probe, "check cancelled")
            else:
                result = pending.result()
            results.append((probe, result))
        with self._round_lock:  # a shared plane's listener may adopt verdicts meanwhile
            return self._apply(results)

    async def _acheck(self, probe: Probe) -> ProbeResult:
        try:
            return await probe.acheck(self.settings.timeout)
        except Exception as exc:
            _log.exception("probe %s failed", probe.name)
            return failed(probe, f"probe error: {describe(exc)}")

    def _collect(self) -> list[tuple[Probe, ProbeResult]]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=max(1, len(self.probes)), thread_name_prefix="selectors-lib-probe"
            )
        timeout = self.settings.timeout
        submitted: list[tuple[Probe, Future[ProbeResult] | None]] = []
        for probe in self.probes:
            running = self._pending.get(probe.name)
            if running is not None and not running.done():
                # Still stuck in the last round: do not pile up threads behind it.
                submitted.append((probe, None))
                continue
            future = self._executor.submit(probe.check, timeout)
            self._pending[probe.name] = future
            submitted.append((probe, future))
        deadline = time.monotonic() + timeout * GUARD_FACTOR
        results: list[tuple[Probe, ProbeResult]] = []
        for probe, pending in submitted:
            if pending is None:
                results.append((probe, failed(probe, "previous check still running")))
                continue
            try:
                result = pending.result(max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                result = failed(probe, f"no answer within {timeout * GUARD_FACTOR:g}s")
            except Exception as exc:
                _log.exception("probe %s failed", probe.name)
                result = failed(probe, f"probe error: {describe(exc)}")
            results.append((probe, result))
        return results

    def _apply(self, results: list[tuple[Probe, ProbeResult]]) -> MonitorStatus:
        now = self._clock()
        tracker = self._tracker
        self._sync_from_router(now)
        groups: dict[str, Mapping[str, Observation]] = {}
        for probe, result in results:
            wanted = set(probe.endpoint_ids)
            groups[probe.name] = {eid: obs for eid, obs in result.observations if eid in wanted}
        # Churn means "the master is in trouble": only groups with a master can churn.
        # All endpoints of an HTTP probe failing together is a pool-wide outage, no churn.
        with_master = {
            probe.name
            for probe, result in results
            if probe.measures_lag or result.master_ok is not None
        }
        outcome = tracker.observe_round(groups, now, churn_groups=with_master)
        changes: dict[str, EndpointHealth] = {}
        for endpoint_id, state in outcome.changed:
            if state.pinned:
                continue  # someone else holds it down; the router already says so
            health = state.to_health()
            changes[endpoint_id] = health
            self._applied[endpoint_id] = health
        if changes:
            self.router.set_health(changes)
        # A replica that stopped answering may restart empty: forget where it was.
        positions = {
            eid: obs.position
            for probe, result in results
            if probe.measures_lag
            for eid, obs in result.observations
            if obs.position is not None or (obs.ok is False and obs.reason == "probe")
        }
        if positions:
            self.router.set_positions(positions)
        for name in outcome.churn_started:
            _log.warning(
                "master churn in %s: every replica is lagging or failing at once; "
                "pools with these replicas panic and keep routing to all of them",
                name,
            )
        for name in outcome.churn_ended:
            _log.info("master churn in %s is over", name)
        statuses: list[ProbeStatus] = []
        churning = set(outcome.churning)
        for probe, result in results:
            self._report_master(probe.name, result)
            lag: tuple[tuple[str, int | None], ...] = ()
            if probe.measures_lag:
                lag = tuple((eid, obs.lag_bytes) for eid, obs in result.observations)
                for endpoint_id, lag_bytes in lag:
                    self.router.events.emit(LagEvent(endpoint_id, lag_bytes, now))
            statuses.append(
                ProbeStatus(
                    probe.name, result.master_ok, result.detail, probe.name in churning, lag
                )
            )
        status = MonitorStatus(
            rounds=self._status.rounds + 1,
            at=now,
            probes=tuple(statuses),
            endpoints=tuple(sorted(tracker.states.items())),
        )
        self._status = status
        return status

    def _sync_from_router(self, now: float) -> None:
        """Pin what others ejected; give a fresh start to what others readmitted."""
        health = self.router.health
        for endpoint_id in sorted({eid for p in self.probes for eid in p.endpoint_ids}):
            current = health.get(endpoint_id)
            if current is None:
                continue  # not served by the router's configuration (any more)
            mine = self._applied.get(endpoint_id)
            state = self._tracker.state(endpoint_id)
            if not current.healthy:
                if current != mine:
                    self._tracker.pin(endpoint_id, now)
            elif not state.healthy and (state.pinned or (mine is not None and not mine.healthy)):
                # Someone readmitted it (or a reload dropped what we ejected).
                self._tracker.unpin(endpoint_id, now)
                self._applied.pop(endpoint_id, None)

    def _report_master(self, name: str, result: ProbeResult) -> None:
        # Log on transitions only: one line per outage, not one per round.
        if result.master_ok is False and name not in self._master_down:
            self._master_down.add(name)
            _log.warning("%s: %s (replicas keep their state)", name, result.detail)
        elif result.master_ok and name in self._master_down:
            self._master_down.discard(name)
            _log.info("%s: master readable again", name)

    # -- background thread -------------------------------------------------------------

    def start(self) -> HealthMonitor:
        """Start probing in a daemon thread.

        Returns:
            The monitor itself.

        Raises:
            RuntimeError: It is already running.
        """
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError("the health monitor is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="selectors-lib-health", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop the thread, wait for the round in progress, and release probes.

        Args:
            timeout: Seconds to wait for the thread (None waits as long as it takes).
        """
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        self.close()

    def close(self) -> None:
        """Release the probes' connections and threads."""
        for probe in self.probes:
            try:
                probe.close()
            except Exception:
                _log.exception("closing probe %s failed", probe.name)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._pending.clear()
        if self._plane is not None:
            self._plane.close()

    def __enter__(self) -> HealthMonitor:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _loop(self) -> None:
        interval = self.settings.interval
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:
                # A monitor that dies silently leaves ejections frozen: log and go on.
                _log.exception("health round failed")
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < 0:
                # The round overran the interval: start the next now, without a burst.
                next_at, delay = time.monotonic(), 0.0
            if self._stop.wait(delay):
                break

    # -- asyncio -----------------------------------------------------------------------

    async def run(self) -> None:
        """Probe forever on the running event loop; cancel the task to stop."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while True:
                try:
                    await self.arun_once()
                except Exception:
                    _log.exception("health round failed")
                next_at += self.settings.interval
                delay = next_at - loop.time()
                if delay < 0:
                    next_at, delay = loop.time(), 0.0
                await asyncio.sleep(delay)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Cancel checks still running on this loop; release the probes' asyncio connections."""
        loop = asyncio.get_running_loop()
        tasks = [t for t in self._atasks.values() if not t.done() and t.get_loop() is loop]
        self._atasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            # Bounded: a probe that ignores cancellation must not hold up shutdown.
            await asyncio.wait(tasks, timeout=self.settings.timeout)
        for probe in self.probes:
            try:
                await probe.aclose()
            except Exception:
                _log.exception("closing probe %s failed", probe.name)
        if self._plane is not None:
            # On the plane's own thread, after the store call a cancelled round
            # left running there (it could otherwise take the lease after the
            # release), and off the event loop (close waits on the store).
            await loop.run_in_executor(self._plane._executor, self._plane.close)

    async def __aenter__(self) -> HealthMonitor:
        if self._task is not None and not self._task.done():
            raise RuntimeError("the health monitor is already running")
        self._task = asyncio.create_task(self.run(), name="selectors-lib-health")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        await cancel_task(task)
