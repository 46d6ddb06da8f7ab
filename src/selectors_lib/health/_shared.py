"""The shared health plane: one instance probes, the whole fleet applies its verdicts.

A :class:`HealthMonitor` whose settings have a ``shared`` section runs its
rounds through a :class:`SharedPlane`. Each round starts with one store call
that renews this instance's lease or tries to take a free one, and the mode
follows from the answer:

- **leader** (holds the lease): probe as usual, then publish the whole verdict
  set, fenced by the lease token, whenever it changed (and once on taking over).
- **follower** (someone else holds it): do not probe; apply the leader's
  snapshots, pushed on the channel as they are published and read from the
  key when one was missed, in generation order, never going back.
- **local** (the store did not answer in time): probe on its own, as a
  monitor without a shared section does, until the store answers again.

Every change of mode is logged, emitted as a :class:`~selectors_lib.FleetEvent`
(metrics), and visible in :attr:`HealthMonitor.fleet`. A follower's tracker
takes every adopted verdict, so when it becomes the leader or falls back to
local probing it starts from the fleet's view, not from "all healthy".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import attrs

from selectors_lib._events import FleetEvent
from selectors_lib._fingerprint import config_fingerprint
from selectors_lib._pool import EndpointHealth

from ._lease import FleetStore, StoreError
from ._probes import describe
from ._shared_settings import SharedSettings
from ._snapshot import FleetSnapshot, SnapshotError, decode_snapshot, encode_snapshot
from ._state import EndpointState

if TYPE_CHECKING:
    from selectors_lib._router import RouterConfig

    from ._monitor import HealthMonitor, MonitorStatus

__all__ = ["MODES", "FleetStatus", "SharedPlane", "default_instance_name"]

_log = logging.getLogger("selectors_lib.health.shared")

#: The modes an instance can be in, as reported by metrics and the CLI.
MODES: tuple[str, ...] = ("leader", "follower", "local")
#: How long the listener waits for a message before checking whether to stop.
_LISTEN_POLL = 0.2
#: Distinct invalid snapshots logged at most per window of this many seconds.
_MAX_REJECTED = 10
_REJECTED_WINDOW = 60.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:\-]")


def default_instance_name() -> str:
    """This process's name in the fleet: ``$SELECTORS_LIB_INSTANCE`` or ``host:pid``."""
    name = os.environ.get("SELECTORS_LIB_INSTANCE") or f"{socket.gethostname()}:{os.getpid()}"
    return _UNSAFE.sub("_", name)[:100] or f"pid-{os.getpid()}"


@attrs.frozen
class FleetStatus:
    """Where this instance stands in its fleet.

    Args:
        instance: This instance's name.
        mode: ``leader``, ``follower`` or ``local``; ``starting`` before the first
            round, ``stopped`` after the monitor stopped.
        generation: The health generation applied last (0 before the first).
        leader: The instance that published it ("" before the first).
        fingerprint: This instance's configuration fingerprint.
        detail: Why the mode last changed.
        since: Unix time of the last change of mode.
    """

    instance: str
    mode: str
    generation: int
    leader: str
    fingerprint: str
    detail: str
    since: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return attrs.asdict(self)


class SharedPlane:
    """Leadership, publication and adoption of verdicts for one monitor.

    Built by :class:`HealthMonitor` from ``settings.shared``; not used directly.

    Args:
        monitor: The monitor whose rounds it runs.
        settings: The ``health.shared`` section.
        instance: This instance's name (default :func:`default_instance_name`).
    """

    def __init__(
        self, monitor: HealthMonitor, settings: SharedSettings, *, instance: str | None = None
    ) -> None:
        self._monitor = monitor
        self.settings = settings
        self.instance = instance or default_instance_name()
        self.store = FleetStore(settings)
        self._token = ""
        self._mode = "starting"
        self._detail = ""
        self._since = time.time()
        self._generation = 0
        self._leader = ""
        self._store_generation = 0
        self._must_publish = True
        self._published: tuple[tuple[str, bool, str | None], ...] | None = None
        self._rejected: set[str] = set()
        self._rejected_since = time.monotonic()
        self._drift: tuple[str, str, str] | None = None
        # Orders the application of snapshots (listener thread vs round thread).
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._fingerprint: tuple[RouterConfig, str] | None = None

    # -- what it knows ------------------------------------------------------------------

    @property
    def mode(self) -> str:
        """``leader``, ``follower``, ``local``; ``starting`` or ``stopped`` outside rounds."""
        return self._mode

    @property
    def status(self) -> FleetStatus:
        """This instance's place in the fleet (safe to read from any thread)."""
        return FleetStatus(
            self.instance,
            self._mode,
            self._generation,
            self._leader,
            self.fingerprint,
            self._detail,
            self._since,
        )

    @property
    def fingerprint(self) -> str:
        """The fingerprint of the configuration the router serves now."""
        config = self._monitor.router.config
        cached = self._fingerprint
        if cached is None or cached[0] is not config:
            cached = (config, config_fingerprint(config))
            self._fingerprint = cached
        return cached[1]

    # -- rounds -------------------------------------------------------------------------

    def run_round(self, probe_round: Callable[[], MonitorStatus]) -> MonitorStatus:
        """One round of the threaded monitor: lease, then probe and publish, or follow.

        Args:
            probe_round: Runs the monitor's probes once and applies their verdicts.
        """
        mode = self._begin()
        if mode == "follower":
            return self._followed()
        status = probe_round()
        if mode == "leader":
            self._publish(status)
        return status

    async def arun_round(
        self, probe_round: Callable[[], Awaitable[MonitorStatus]]
    ) -> MonitorStatus:
        """One round of the asyncio monitor; store calls run on the plane's own thread."""
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="selectors-lib-fleet")
        mode = await loop.run_in_executor(self._executor, self._begin)
        if mode == "follower":
            return self._followed()
        status = await probe_round()
        if mode == "leader":
            await loop.run_in_executor(self._executor, self._publish, status)
        return status

    def _followed(self) -> MonitorStatus:
        # A follower's round counts as a round: the verdicts it holds are current.
        monitor = self._monitor
        with monitor._round_lock:
            status = attrs.evolve(
                monitor._status, rounds=monitor._status.rounds + 1, at=monitor._clock()
            )
            monitor._status = status
        return status

    def _begin(self) -> str:
        self._ensure_listener()
        try:
            lease = self.store.acquire(self.instance, self._token)
            wait = lease.ttl / 1000
            if not lease.mine and wait < self._monitor.settings.interval:
                # The lease runs out before the next round: be there when it does,
                # so that a dead leader is replaced within the lease, not lease + interval.
                time.sleep(wait + 0.005)
                lease = self.store.acquire(self.instance, self._token)
            self._store_generation = lease.generation
            if lease.mine:
                self._token = lease.holder
                if lease.acquired:
                    self._must_publish = True
                self._set_mode("leader", f"holds the lease (fence {lease.fence})")
            else:
                self._token = ""
                holder = lease.holder.partition(":")[2]
                joining = self._mode != "follower"
                self._set_mode("follower", f"follows {holder[:100]!r} (fence {lease.fence})")
                if joining or lease.generation > self._generation:
                    # Joining (from local probing, or after leading) re-applies the
                    # current snapshot even if its generation is not newer: what this
                    # instance did on its own meanwhile is not the fleet's view.
                    self._catch_up(again=joining)
            self.store.report(self.instance, self._record())
        except StoreError as exc:
            self._set_mode("local", f"store unreachable, probing locally: {describe(exc)}")
        return self._mode

    def _record(self) -> dict[str, Any]:
        return {
            "mode": self._mode,
            "generation": self._generation,
            "leader": self._leader,
            "fingerprint": self.fingerprint,
            "at": time.time(),
        }

    def _catch_up(self, *, again: bool = False) -> None:
        data = self.store.current()
        if data is not None:
            self._offer(data, "the store's current snapshot", again=again)

    # -- leading ------------------------------------------------------------------------

    def _publish(self, status: MonitorStatus) -> None:
        # Probe verdicts only: an operator's mark_down on the leader is local to it.
        verdicts = tuple(
            (
                endpoint_id,
                EndpointHealth(
                    not state.ejected,
                    state.reason if state.ejected else None,
                    state.detail,
                    state.since,
                ),
            )
            for endpoint_id, state in status.endpoints
        )
        key = tuple((eid, health.healthy, health.reason) for eid, health in verdicts)
        if key == self._published and not self._must_publish:
            return
        token = self._token
        fence = int(token.partition(":")[0] or 0)
        generation = max(self._generation, self._store_generation) + 1
        # At least the wall clock in ms: a store restarted empty forgets its
        # generation, and the fleet must still see the next snapshot as newer.
        generation = max(generation, int(time.time() * 1000))
        try:
            for _attempt in range(3):
                snapshot = FleetSnapshot(
                    generation, fence, self.instance, self.fingerprint, time.time(), verdicts
                )
                result = self.store.publish(token, generation, encode_snapshot(snapshot))
                if result.published:
                    break
                if result.fenced:
                    self._token = ""
                    self._set_mode("follower", "lost the lease before publishing")
                    return
                generation = result.generation + 1
            else:
                return
        except StoreError as exc:
            self._set_mode("local", f"store unreachable, probing locally: {describe(exc)}")
            return
        with self._lock:
            self._generation = generation
            self._leader = self.instance
            self._store_generation = generation
        self._published = key
        self._must_publish = False
        self._emit("published")

    # -- following ----------------------------------------------------------------------

    def _offer(self, data: bytes | str, source: str, *, again: bool = False) -> None:
        """Apply a valid snapshot while following: a newer one, or the same one ``again``."""
        try:
            snapshot = decode_snapshot(data, max_bytes=self.settings.max_snapshot_bytes)
        except SnapshotError as exc:
            message = f"{source}: {exc}"
            now = time.monotonic()
            if now - self._rejected_since > _REJECTED_WINDOW:
                self._rejected.clear()
                self._rejected_since = now
            # Once per distinct problem, and a few per window: whoever floods the
            # channel with varied garbage does not flood the log with it.
            if message not in self._rejected and len(self._rejected) < _MAX_REJECTED:
                self._rejected.add(message)
                _log.warning("ignored an invalid snapshot from %s", message)
            return
        with self._lock:
            newest = self._generation
            if self._mode != "follower" or snapshot.generation < newest:
                return
            if snapshot.generation == newest and not again:
                return
            self._adopt(snapshot)
            self._generation = snapshot.generation
            self._leader = snapshot.leader
            drift = (snapshot.leader, snapshot.fingerprint, self.fingerprint)
            if snapshot.fingerprint != self.fingerprint and drift != self._drift:
                # Once per distinct drift, not per snapshot: a rolling deploy (or
                # anyone who can publish) would otherwise flood the log.
                self._drift = drift
                _log.warning(
                    "leader %s serves configuration %s, this instance %s",
                    snapshot.leader,
                    snapshot.fingerprint,
                    self.fingerprint,
                )
            self._emit("applied")

    def _adopt(self, snapshot: FleetSnapshot) -> None:
        # The monitor's own bookkeeping, as its _apply keeps it: an endpoint
        # someone else ejected stays pinned, endpoints this router does not
        # serve are ignored, and the tracker takes every verdict, so that a
        # follower that becomes leader (or goes local) starts from the fleet's view.
        monitor = self._monitor
        known = monitor.router.config.endpoint_ids
        with monitor._round_lock:
            now = monitor._clock()
            monitor._sync_from_router(now)
            current = monitor.router.health
            changes: dict[str, EndpointHealth] = {}
            for endpoint_id, health in snapshot.endpoints:
                if endpoint_id not in known:
                    continue
                old = monitor._tracker.state(endpoint_id)
                if old.pinned:
                    continue
                monitor._tracker.restore(
                    endpoint_id,
                    EndpointState(
                        ejected=not health.healthy,
                        reason=health.reason,
                        detail=health.detail,
                        since=health.since,
                        lag_bytes=old.lag_bytes,
                    ),
                )
                serving = current.get(endpoint_id)
                if serving is None or (serving.healthy, serving.reason) != (
                    health.healthy,
                    health.reason,
                ):
                    changes[endpoint_id] = health
                    monitor._applied[endpoint_id] = health
            if changes:
                monitor.router.set_health(changes)
            monitor._status = attrs.evolve(
                monitor._status,
                at=now,
                endpoints=tuple(sorted(monitor._tracker.states.items())),
            )

    def _ensure_listener(self) -> None:
        if self._listener is not None and self._listener.is_alive():
            return
        self._stop.clear()
        self._listener = threading.Thread(
            target=self._listen, name="selectors-lib-fleet-listener", daemon=True
        )
        self._listener.start()

    def _listen(self) -> None:
        interval = self._monitor.settings.interval
        while not self._stop.is_set():
            pubsub = None
            try:
                pubsub = self.store.pubsub()
                pubsub.subscribe(self.store.channel)
                # Subscribed first, then read the key: nothing falls in between.
                self._catch_up()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=_LISTEN_POLL)
                    if message is not None and message.get("type") == "message":
                        self._offer(message["data"], "the snapshot channel")
            except StoreError:
                self._stop.wait(interval)  # the rounds report the outage
            except Exception:
                _log.exception("the snapshot listener failed; starting again")
                self._stop.wait(interval)
            finally:
                if pubsub is not None:
                    with contextlib.suppress(*StoreError):
                        pubsub.close()

    # -- reporting ----------------------------------------------------------------------

    def _set_mode(self, mode: str, detail: str) -> None:
        if mode == self._mode:
            return
        old, self._mode, self._detail, self._since = self._mode, mode, detail, time.time()
        level = logging.WARNING if mode == "local" else logging.INFO
        _log.log(level, "fleet %s: %s -> %s: %s", self.settings.namespace, old, mode, detail)
        self._emit(detail)

    def _emit(self, detail: str) -> None:
        self._monitor.router.events.emit(
            FleetEvent(
                self._mode, self._generation, self._leader, self.fingerprint, detail, time.time()
            )
        )

    def close(self) -> None:
        """Stop listening, hand the lease over if held, and close the store's connections."""
        self._stop.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.join(2 * _LISTEN_POLL + self.settings.timeout)
        try:
            if self._token:
                self.store.release(self._token)
            self.store.forget(self.instance)
        except StoreError:
            pass
        self._token = ""
        self._must_publish = True
        self._set_mode("stopped", "the monitor stopped")
        self.store.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
