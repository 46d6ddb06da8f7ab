"""A replica (or master) that answers ``INFO`` badly fails alone, in both monitors.

Two real redis-server replicas (``ro-1``, ``ro-2``) follow a real master; a
third replica ``ro-3`` is a :class:`HostileRedis` answering with one scripted
misbehaviour. Whatever it does, after ``eject_after`` rounds only ``ro-3`` is
ejected (reason ``probe``, with a detail that says why), no churn is reported,
the pool does not panic, and no key routes to ``ro-3``. A hostile *master*
gives no verdict to any replica and is reported in ``master_unreachable``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator

import pytest
from health_redis_nodes import RedisSet, wait_for
from health_resp_servers import BEHAVIOURS, MASTER_ONLY, HostileRedis

from selectors_lib import Criteria, Router, load_router
from selectors_lib.health import HealthMonitor, MonitorStatus

pytestmark = pytest.mark.redis

TIMEOUT = 0.3
EJECT_AFTER = 2
USERS = tuple(Criteria(authenticated_user=f"user-{i}") for i in range(100))


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSet]:
    """One real master and two replicas shared by every case of this module."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed; CI must install it")
        pytest.skip("redis-server is not installed")
    redis_set = RedisSet(binary, tmp_path_factory.mktemp("hostile"))
    try:
        wait_for("both replicas in sync with the master", redis_set.in_sync)
        yield redis_set
    finally:
        redis_set.close()


def make_router(nodes: RedisSet, master: str, replicas: dict[str, str]) -> Router:
    return load_router(
        {
            "endpoints": replicas,
            "routes": [
                {
                    "name": "reads",
                    "default": True,
                    "target": {"endpoints": list(replicas), "hash_on": ["authenticated_user"]},
                }
            ],
            "health": {
                "timeout": TIMEOUT,
                "eject_after": EJECT_AFTER,
                "readmit_after": 1,
                "probes": [
                    {
                        "type": "redis_lag",
                        "name": "cache",
                        "master": master,
                        "replicas": list(replicas),
                    }
                ],
            },
        }
    )


def run_rounds(monitor: HealthMonitor, mode: str, rounds: int) -> MonitorStatus:
    if mode == "thread":
        for _ in range(rounds):
            status = monitor.run_once()
        monitor.close()
        return status

    async def scenario() -> MonitorStatus:
        for _ in range(rounds):
            status = await monitor.arun_once()
        await monitor.aclose()
        return status

    return asyncio.run(scenario())


@pytest.mark.parametrize("mode", ["thread", "asyncio"])
@pytest.mark.parametrize("behaviour", sorted(BEHAVIOURS))
def test_a_hostile_replica_is_ejected_alone(nodes: RedisSet, behaviour: str, mode: str) -> None:
    hostile = HostileRedis(behaviour)
    try:
        replicas = {name: node.url for name, node in nodes.replicas.items()}
        # By name: the asyncio probe resolves it on a thread of its own, not the loop's.
        hostile_url = hostile.url.replace("127.0.0.1", "localhost")
        router = make_router(nodes, nodes.master.url, {**replicas, "ro-3": hostile_url})
        status = run_rounds(HealthMonitor.from_router(router), mode, EJECT_AFTER + 1)
    finally:
        hostile.close()
    bad = status.endpoint("ro-3")
    assert not bad.healthy
    assert bad.reason == "probe"
    assert BEHAVIOURS[behaviour][1] in bad.detail, bad.detail
    for name in ("ro-1", "ro-2"):
        assert status.endpoint(name).healthy, (name, status.endpoint(name))
    assert status.churning == ()
    assert status.master_unreachable == ()
    decisions = [router.explain(user) for user in USERS]
    assert not any(d.panic for d in decisions)
    assert {d.endpoint.id for d in decisions} == {"ro-1", "ro-2"}
    # The client stopped reading: what the server got out is bounded by socket
    # buffers, never the 300 MB it announced.
    assert max(hostile.sent, default=0) < 32 * 1024 * 1024


MASTER_BEHAVIOURS = {
    name: BEHAVIOURS[name][1]
    for name in ("integer", "not-utf8", "drip", "oversized", "bad-length", "server-error")
} | {name: words for name, (_, words) in MASTER_ONLY.items()}


@pytest.mark.parametrize("mode", ["thread", "asyncio"])
@pytest.mark.parametrize("behaviour", sorted(MASTER_BEHAVIOURS))
def test_an_unreadable_master_gives_no_verdict(nodes: RedisSet, behaviour: str, mode: str) -> None:
    hostile = HostileRedis(behaviour)
    try:
        replicas = {name: node.url for name, node in nodes.replicas.items()}
        router = make_router(nodes, hostile.url, replicas)
        status = run_rounds(HealthMonitor.from_router(router), mode, EJECT_AFTER + 1)
    finally:
        hostile.close()
    assert status.master_unreachable == ("cache",)
    (probe,) = status.probes
    assert MASTER_BEHAVIOURS[behaviour] in probe.detail, probe.detail
    for name in ("ro-1", "ro-2"):
        state = status.endpoint(name)
        assert state.healthy, (name, state)
        assert state.bad_streak == 0, (name, state)
    assert status.churning == ()
