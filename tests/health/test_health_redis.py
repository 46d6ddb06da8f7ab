"""Replication lag against real Redis: every scenario is asserted through the router."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from health_redis_nodes import WAIT, RedisSet, wait_for

from selectors_lib import Criteria, Event, HealthEvent, LagEvent, Router, load_router
from selectors_lib.health import HealthMonitor, replica_observation

pytestmark = pytest.mark.redis

MAX_LAG = 256 * 1024
EJECT_AFTER = 3
READMIT_AFTER = 2
USERS = tuple(Criteria(authenticated_user=f"user-{i}") for i in range(200))


def make_router(nodes: RedisSet, *, master: str | None = None) -> Router:
    return load_router(
        {
            "endpoints": {name: node.url for name, node in nodes.replicas.items()},
            "routes": [
                {
                    "name": "reads",
                    "default": True,
                    "target": {"endpoints": ["ro-1", "ro-2"], "hash_on": ["authenticated_user"]},
                }
            ],
            "health": {
                "interval": 0.1,
                "timeout": 0.5,
                "eject_after": EJECT_AFTER,
                "readmit_after": READMIT_AFTER,
                "probes": [
                    {
                        "type": "redis_lag",
                        "name": "cache",
                        "master": master or nodes.master.url,
                        "replicas": ["ro-1", "ro-2"],
                        "max_lag_bytes": MAX_LAG,
                    }
                ],
            },
        }
    )


class Recorder:
    """Collects a router's health and lag events with the monitor round they came from."""

    def __init__(self, router: Router, monitor: HealthMonitor) -> None:
        self.monitor = monitor
        self.health: list[tuple[int, HealthEvent]] = []
        self.lag: list[LagEvent] = []
        self.routes: list[str] = []
        self._lock = threading.Lock()
        router.events.subscribe(self)

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, HealthEvent):
                # Emitted inside a round, before it is counted: that round is rounds + 1.
                self.health.append((self.monitor.status.rounds + 1, event))
            elif isinstance(event, LagEvent):
                self.lag.append(event)

    def changes(self, endpoint_id: str) -> list[tuple[int, HealthEvent]]:
        with self._lock:
            return [(r, e) for r, e in self.health if e.endpoint_id == endpoint_id]


def routes(router: Router) -> dict[Criteria, str]:
    return {c: router.select(c).id for c in USERS}


def healthy(router: Router, endpoint_id: str) -> bool:
    return router.health[endpoint_id].healthy


def wait_rounds(monitor: HealthMonitor, count: int) -> None:
    target = monitor.status.rounds + count
    wait_for(f"{count} more probe rounds", lambda: monitor.status.rounds >= target)


def baseline(router: Router, monitor: HealthMonitor) -> dict[Criteria, str]:
    wait_rounds(monitor, 2)
    assert all(h.healthy for h in router.health.values()), router.health
    before = routes(router)
    assert set(before.values()) == {"ro-1", "ro-2"}, "the test needs keys on both replicas"
    return before


def test_stopped_replica_is_ejected_gets_no_routes_and_gets_its_keys_back(
    redis_set: RedisSet,
) -> None:
    router = make_router(redis_set)
    with HealthMonitor.from_router(router) as monitor:
        recorder = Recorder(router, monitor)
        before = baseline(router, monitor)
        stopped_at = monitor.status.rounds
        redis_set.replicas["ro-1"].pause()
        redis_set.write(1024 * 1024)
        wait_for("ro-1 ejected", lambda: not healthy(router, "ro-1"))

        (ejected_round, event), *_ = recorder.changes("ro-1")
        assert not event.healthy
        assert event.reason == "probe"  # a stopped server answers nothing within the timeout
        # One round may have read ro-1 just before it stopped; then EJECT_AFTER bad rounds.
        assert ejected_round <= stopped_at + 1 + EJECT_AFTER

        for _ in range(3):  # over several rounds, nothing goes to the stopped replica
            now = routes(router)
            assert "ro-1" not in now.values()
            assert all(now[c] == "ro-2" for c in USERS)
            wait_rounds(monitor, 1)
        moved = next(c for c in USERS if before[c] == "ro-1")
        decision = router.explain(moved)
        assert decision.failover
        assert not decision.panic
        assert decision.skipped[0][0] == "ro-1"
        assert "probe" in decision.skipped[0][1]
        assert routes(router) == dict.fromkeys(USERS, "ro-2")
        assert not healthy(router, "ro-1"), "still stopped: never readmitted"

        redis_set.replicas["ro-1"].resume()
        wait_for("ro-1 readmitted", lambda: healthy(router, "ro-1"))
        readmitted = recorder.changes("ro-1")[-1][1]
        assert readmitted.healthy
        state = monitor.status.endpoint("ro-1")
        assert state.lag_bytes is not None
        assert state.lag_bytes <= MAX_LAG
        assert routes(router) == before, "every key returns to the replica it had"
        assert recorder.changes("ro-2") == [], "the replica that kept up was never touched"


def test_lagging_replica_is_ejected_for_lag_and_readmitted_after_catching_up(
    redis_set: RedisSet,
) -> None:
    router = make_router(redis_set)
    with HealthMonitor.from_router(router) as monitor:
        recorder = Recorder(router, monitor)
        before = baseline(router, monitor)
        redis_set.proxy["ro-2"].stall()  # its replication stream stops; it still answers
        redis_set.write(1024 * 1024)
        wait_for("ro-2 ejected", lambda: not healthy(router, "ro-2"))
        event = recorder.changes("ro-2")[0][1]
        assert event.reason == "lag"
        assert "bytes behind" in event.detail
        assert any(e.endpoint_id == "ro-2" and (e.lag_bytes or 0) > MAX_LAG for e in recorder.lag)
        assert set(routes(router).values()) == {"ro-1"}
        assert router.health["ro-2"].reason == "lag"

        redis_set.proxy["ro-2"].resume()
        wait_for("ro-2 caught up and readmitted", lambda: healthy(router, "ro-2"))
        assert routes(router) == before
        assert recorder.changes("ro-1") == [], "the healthy replica was never touched"


def test_killed_replica_is_ejected_and_the_other_keeps_serving(redis_set: RedisSet) -> None:
    router = make_router(redis_set)
    with HealthMonitor.from_router(router) as monitor:
        recorder = Recorder(router, monitor)
        before = baseline(router, monitor)
        redis_set.replicas["ro-2"].kill()
        wait_for("ro-2 ejected", lambda: not healthy(router, "ro-2"))
        wait_rounds(monitor, 3)
        after = routes(router)
        assert set(after.values()) == {"ro-1"}
        # Only ro-2's keys moved; ro-1's stayed where they were.
        assert all(after[c] == "ro-1" for c in USERS if before[c] == "ro-1")
        assert not router.explain(USERS[0]).panic
        assert healthy(router, "ro-1")
        assert recorder.changes("ro-1") == []
        assert "no answer" in router.health["ro-2"].detail


def test_all_replicas_lagging_is_churn_the_pool_panics_and_reads_keep_flowing(
    redis_set: RedisSet,
) -> None:
    router = make_router(redis_set)
    with HealthMonitor.from_router(router) as monitor:
        before = baseline(router, monitor)
        for proxy in redis_set.proxies:
            proxy.stall()
        redis_set.write(1024 * 1024)
        wait_for(
            "both replicas ejected", lambda: not any(h.healthy for h in router.health.values())
        )
        wait_for("master churn reported", lambda: monitor.status.churning == ("cache",))
        assert {h.reason for h in router.health.values()} == {"lag"}
        decisions = [router.explain(c) for c in USERS]
        assert all(d.panic for d in decisions)
        # Reads keep flowing to both, and no key moves while the pool panics.
        assert routes(router) == before
        assert monitor.status.to_dict()["churning"] == ["cache"]

        for proxy in redis_set.proxies:
            proxy.resume()
        wait_for("both replicas readmitted", lambda: all(h.healthy for h in router.health.values()))
        wait_for("churn over", lambda: monitor.status.churning == ())
        assert not router.explain(USERS[0]).panic
        assert routes(router) == before


def test_master_unreachable_is_reported_and_replicas_stay(redis_set: RedisSet) -> None:
    router = make_router(redis_set)
    with HealthMonitor.from_router(router) as monitor:
        recorder = Recorder(router, monitor)
        before = baseline(router, monitor)
        redis_set.master.kill()
        wait_for("master reported unreachable", lambda: monitor.status.master_unreachable)
        wait_rounds(monitor, EJECT_AFTER + 2)
        status = monitor.status
        assert status.master_unreachable == ("cache",)
        assert "master unreadable" in status.probes[0].detail
        assert recorder.health == [], "no replica was ejected for the master's trouble"
        assert all(h.healthy for h in router.health.values())
        assert routes(router) == before
        assert any(e.lag_bytes is None for e in recorder.lag), "lag unknown is reported"


def test_asyncio_monitor_ejects_a_killed_replica(redis_set: RedisSet) -> None:
    router = make_router(redis_set)
    monitor = HealthMonitor.from_router(router)

    async def scenario() -> None:
        async with monitor:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT
            while monitor.status.rounds < 2:
                assert loop.time() < deadline, "the asyncio monitor never completed a round"
                await asyncio.sleep(0.02)
            redis_set.replicas["ro-1"].kill()
            while healthy(router, "ro-1"):
                assert loop.time() < deadline, "ro-1 was not ejected in time"
                await asyncio.sleep(0.02)
            assert set(routes(router).values()) == {"ro-2"}

    asyncio.run(scenario())
    assert not healthy(router, "ro-1")


# -- the verdict on one replica, from INFO replication (pure) ---------------------------

MASTER: dict[str, Any] = {"role": "master", "master_repl_offset": 10_000, "master_replid": "a"}


def replica(**info: Any) -> dict[str, Any]:
    base = {
        "role": "slave",
        "master_link_status": "up",
        "slave_repl_offset": 10_000,
        "master_replid": "a",
    }
    base.update(info)
    return base


@pytest.mark.parametrize(
    ("master", "info", "ok", "reason", "lag"),
    [
        (MASTER, replica(), True, "probe", 0),
        (MASTER, replica(slave_repl_offset=9_000), True, "probe", 1_000),
        (MASTER, replica(slave_repl_offset=8_999), False, "lag", 1_001),
        (MASTER, replica(slave_repl_offset=12_000), True, "probe", 0),  # read after the master
        (MASTER, replica(master_link_status="down"), False, "lag", None),
        (MASTER, replica(role="master"), False, "lag", None),
        (MASTER, replica(master_replid="b"), False, "lag", None),
        (None, replica(master_link_status="down"), None, "probe", None),
        (MASTER, {"role": "slave", "master_link_status": "up"}, None, "probe", None),
        (MASTER, replica(slave_repl_offset=None, master_repl_offset=9_500), True, "probe", 500),
    ],
)
def test_replica_observation(
    master: dict[str, Any] | None,
    info: dict[str, Any],
    ok: bool | None,
    reason: str,
    lag: int | None,
) -> None:
    info = {k: v for k, v in info.items() if v is not None}
    obs = replica_observation(master, info, 1_000)
    assert (obs.ok, obs.reason, obs.lag_bytes) == (ok, reason, lag)
