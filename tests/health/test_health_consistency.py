"""Read-your-writes tokens against real Redis: write, take the token, route, read.

A master and two replicas, each behind a relay the test can stall; the health
monitor runs as in production and feeds the router the replicas' positions.
Every read goes to the endpoint the router chose, so a stale read is a real one.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from health_redis_nodes import RedisNode, RedisSet, wait_for

from selectors_lib import Criteria, Router, load_router
from selectors_lib import consistency as ct
from selectors_lib.health import HealthMonitor

pytestmark = pytest.mark.redis

redis = pytest.importorskip("redis")

_ids = itertools.count()


def make_router(nodes: RedisSet, **policy: Any) -> Router:
    return load_router(
        {
            "endpoints": {
                "primary": nodes.master.url,
                **{name: node.url for name, node in nodes.replicas.items()},
            },
            "routes": [
                {
                    "name": "reads",
                    "default": True,
                    "target": {
                        "endpoints": ["ro-1", "ro-2"],
                        "hash_on": ["authenticated_user"],
                        "consistency": {"fallback": "primary", "max_age": 1.0, **policy},
                    },
                }
            ],
            "health": {
                "interval": 0.02,
                "timeout": 0.3,
                "eject_after": 3,
                "readmit_after": 2,
                "probes": [
                    {
                        "type": "redis_lag",
                        "name": "cache",
                        "master": nodes.master.url,
                        "replicas": ["ro-1", "ro-2"],
                        "max_lag_bytes": 1 << 40,  # positions, not ejection, are under test
                    }
                ],
            },
        }
    )


class Pairs:
    """Runs write -> token -> route -> read pairs and counts what was read.

    Each read follows its write by ``think`` seconds (a client polling for what
    it just did), so probe rounds land in between, as they would in production.
    """

    def __init__(self, nodes: RedisSet, router: Router, think: float = 0.03) -> None:
        self.nodes = nodes
        self.router = router
        self.think = think
        self.clients = {
            "primary": nodes.master.client,
            **{
                name: redis.Redis(port=node.port, socket_timeout=0.5, decode_responses=True)
                for name, node in nodes.replicas.items()
            },
        }
        self.stale = self.stale_without = self.refused = self.reads = 0
        self.served: dict[str, int] = {}
        self.down: set[str] = set()  # stopped replicas: no token-less read is sent there
        self.pending: collections.deque[tuple[float, str, str, str, str]] = collections.deque()

    def read(self, endpoint_id: str, key: str) -> str | None:
        try:
            value: str | None = self.clients[endpoint_id].get(key)
        except (redis.ConnectionError, redis.TimeoutError):
            # Killed and not back yet: the client goes to the primary, as a real one would.
            self.refused += 1
            value = self.clients["primary"].get(key)
        except redis.ResponseError as exc:
            # replica-serve-stale-data no: a resyncing replica refuses, never lies.
            if "MASTERDOWN" not in str(exc) and "LOADING" not in str(exc):
                raise
            self.refused += 1
            value = self.clients["primary"].get(key)
        return value

    def check(self, key: str, value: str, token: str, user: str) -> None:
        endpoint = self.router.select(
            Criteria(authenticated_user=user, attributes={ct.TOKEN_ATTRIBUTE: token})
        )
        self.served[endpoint.id] = self.served.get(endpoint.id, 0) + 1
        self.reads += 1
        if self.read(endpoint.id, key) != value:
            self.stale += 1
        plain = self.router.select(Criteria(authenticated_user=user))
        if plain.id not in self.down and self.read(plain.id, key) != value:
            self.stale_without += 1

    def run(self, count: int) -> None:
        for _ in range(count):
            i = next(_ids)
            key, value = f"ryw:{i}", f"v{i}"
            self.nodes.master.client.set(key, value)
            token = str(ct.after_write(self.nodes.master.client))
            self.pending.append((time.monotonic(), key, value, token, f"user-{i % 40}"))
            self.due()
            time.sleep(0.001)
        while self.pending:
            time.sleep(0.005)
            self.due()

    def due(self) -> None:
        now = time.monotonic()
        while self.pending and now - self.pending[0][0] >= self.think:
            self.check(*self.pending.popleft()[1:])

    def close(self) -> None:
        for name, client in self.clients.items():
            if name != "primary":
                client.close()


@pytest.fixture
def monitored(redis_set: RedisSet) -> Iterator[tuple[RedisSet, Router, HealthMonitor]]:
    router = make_router(redis_set)
    with HealthMonitor.from_router(router) as monitor:
        wait_for("positions of both replicas", lambda: len(router.positions) == 2)
        yield redis_set, router, monitor


def stall(nodes: RedisSet, *names: str) -> None:
    """Hold back replication to ``names``; the relay's pump already blocked in a read
    passes one more chunk, so push a priming write through first."""
    for name in names:
        nodes.proxy[name].stall()
    nodes.master.client.set("prime", "x")
    time.sleep(0.1)


def restart(node: RedisNode) -> None:
    """Kill a replica and start it again, empty, on its port, refusing reads until synced."""
    args = [*node.process.args, "--replica-serve-stale-data", "no"]
    node.kill()
    if node.process.stderr is not None:
        node.process.stderr.close()
    node.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for("the restarted replica to answer", node.client.ping)


def test_no_stale_read_with_tokens_across_lag_stop_and_restart(
    monitored: tuple[RedisSet, Router, HealthMonitor],
) -> None:
    nodes, router, _ = monitored
    for node in nodes.replicas.values():
        node.client.config_set("replica-serve-stale-data", "no")
    pairs = Pairs(nodes, router)
    try:
        pairs.run(150)  # replicas in step
        nodes.proxy["ro-1"].stall()  # ro-1 falls behind and stays there
        pairs.run(250)
        nodes.proxy["ro-1"].resume()
        nodes.replicas["ro-2"].pause()  # SIGSTOP: no answer, no progress
        pairs.down.add("ro-2")
        pairs.run(200)
        nodes.replicas["ro-2"].resume()
        pairs.down.clear()
        wait_for("replicas back in sync", nodes.in_sync)
        pairs.run(100)
        pairs.down.add("ro-2")
        # Started empty; refuses reads until it has resynced (see docs/consistency.md).
        restart(nodes.replicas["ro-2"])
        pairs.run(200)
        pairs.down.clear()
        wait_for("ro-2 resynced", nodes.in_sync)
        pairs.run(100)
    finally:
        pairs.close()
    assert pairs.reads == 1000
    assert pairs.stale == 0
    # The same run without tokens read stale data from the stalled replica: the
    # scenario does exercise lag, and tokens are what kept those reads fresh.
    assert pairs.stale_without > 0
    # Stickiness kept whenever possible: most token reads still went to replicas.
    assert pairs.served.get("ro-1", 0) + pairs.served.get("ro-2", 0) > pairs.reads // 2


def test_explain_names_stale_replicas_and_bytes(
    monitored: tuple[RedisSet, Router, HealthMonitor],
) -> None:
    nodes, router, _ = monitored
    stall(nodes, "ro-1", "ro-2")
    nodes.master.client.set("big", "x" * 5000)
    token = ct.after_write(nodes.master.client)
    criteria = Criteria(authenticated_user="u", attributes={ct.TOKEN_ATTRIBUTE: str(token)})
    wait_for(
        "a round after the write",
        lambda: all(p.at > time.monotonic() - 0.2 for p in router.positions.values()),
    )
    decision = router.explain(criteria)
    assert decision.endpoint.id == "primary"
    assert decision.consistency == "fallback"
    assert {s.endpoint for s in decision.stale} == {"ro-1", "ro-2"}
    assert all(s.behind is not None and s.behind >= 5000 for s in decision.stale)
    assert "bytes behind the token" in str(decision)
    assert router.select(criteria).id == "primary"
    for proxy in nodes.proxy.values():
        proxy.resume()
    wait_for(
        "replicas caught up: the key's own replica serves it again",
        lambda: router.select(criteria).id == router.select(Criteria(authenticated_user="u")).id,
    )
    assert router.explain(criteria).consistency == "replica"


def test_replication_id_change_sends_token_reads_to_the_primary(
    monitored: tuple[RedisSet, Router, HealthMonitor],
) -> None:
    nodes, router, _ = monitored
    nodes.replicas["ro-1"].client.execute_command("REPLICAOF", "NO", "ONE")
    stall(nodes, "ro-2")
    nodes.master.client.set("k", "v")
    token = ct.after_write(nodes.master.client)
    promoted = nodes.replicas["ro-1"].client.info("replication")["master_replid"]
    assert promoted != token.replid
    wait_for("ro-1's new history observed", lambda: router.positions["ro-1"].replid == promoted)
    for user in range(30):
        criteria = Criteria(
            authenticated_user=f"u{user}", attributes={ct.TOKEN_ATTRIBUTE: str(token)}
        )
        decision = router.explain(criteria)
        assert decision.endpoint.id == "primary"
        reasons = {s.endpoint: s.reason for s in decision.stale}
        # The promoted node is not a replica any more: the lag probe ejects it
        # too, and until it does its position names its own, new history.
        assert reasons["ro-1"] in ("follows another replication history", "down")
    nodes.proxy["ro-2"].resume()


def test_wait_returns_the_keys_replica_once_it_catches_up(
    redis_set: RedisSet,
) -> None:
    router = make_router(redis_set, on_stale="wait", wait=5.0, max_age=10.0)
    with HealthMonitor.from_router(router):
        wait_for("positions", lambda: len(router.positions) == 2)
        user = Criteria(authenticated_user="sticky")
        home = router.select(user).id
        stall(redis_set, home)
        other = "ro-2" if home == "ro-1" else "ro-1"
        # Before the write, so only the key's own replica can qualify (paused
        # after it, the other one could already hold the write: a race).
        redis_set.replicas[other].pause()
        redis_set.master.client.set("w", "1")
        token = ct.after_write(redis_set.master.client)
        try:
            criteria = ct.with_token(user, token)
            assert router.select(criteria).id == "primary"  # the router itself never waits
            timer = threading.Timer(0.2, redis_set.proxy[home].resume)
            timer.start()
            assert ct.select(router, criteria).id == home
            timer.join()
            stall(redis_set, home)
            redis_set.master.client.set("w", "2")
            token2 = ct.after_write(redis_set.master.client)
            threading.Timer(0.2, redis_set.proxy[home].resume).start()
            assert asyncio.run(ct.aselect(router, ct.with_token(user, token2))).id == home
        finally:
            redis_set.replicas[other].resume()
            redis_set.proxy[home].resume()


def test_wait_is_bounded_then_falls_back(redis_set: RedisSet) -> None:
    router = make_router(redis_set, on_stale="wait", wait=0.3)
    with HealthMonitor.from_router(router):
        wait_for("positions", lambda: len(router.positions) == 2)
        stall(redis_set, "ro-1", "ro-2")
        try:
            redis_set.master.client.set("w", "1")
            token = ct.after_write(redis_set.master.client)
            criteria = Criteria(authenticated_user="x", attributes={ct.TOKEN_ATTRIBUTE: str(token)})
            assert ct.select(router, criteria).id == "primary"
            assert asyncio.run(ct.aselect(router, criteria)).id == "primary"
        finally:
            for proxy in redis_set.proxy.values():
                proxy.resume()


def test_token_from_url_matches_redis_py(redis_set: RedisSet) -> None:
    redis_set.master.client.set("a", "b")
    ours = ct.token_from_url(redis_set.master.url)
    theirs = ct.after_write(redis_set.master.client)
    assert ours.replid == theirs.replid
    assert ours.offset <= theirs.offset
    assert asyncio.run(ct.atoken_from_url(redis_set.master.url)).replid == ours.replid
    with pytest.raises(ct.TokenError, match="not a primary"):
        ct.token_from_url(redis_set.replicas["ro-1"].url)
