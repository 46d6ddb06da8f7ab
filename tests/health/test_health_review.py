"""Regressions found by the review of the health plane (each test reproduced a defect)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from health_fleet_support import Instance, StoreNode, fleet_config, wait
from health_redis_nodes import RedisSet

from selectors_lib.cli import main
from selectors_lib.health._lease import FleetStore
from selectors_lib.health._redis import RedisLagProbe
from selectors_lib.health._settings import RedisLagProbeSettings
from selectors_lib.health._shared_settings import SharedSettings

pytestmark = pytest.mark.redis


def test_hostile_snapshot_reasons_do_not_grow_metric_label_sets(
    fleet_store: StoreNode, caplog: pytest.LogCaptureFixture
) -> None:
    # Anyone who can write to the store can publish: a follower must not let
    # them mint one ejections_total series per invented reason, nor log a
    # warning per snapshot of a configuration that differs from its own, or
    # per invalid message.
    caplog.set_level(logging.WARNING, "selectors_lib.health.shared")
    from prometheus_client import CollectorRegistry

    from selectors_lib.prometheus import instrument

    store = FleetStore(SharedSettings(fleet_store.url, "t"))
    store.client.set(store.lease_key, "999:rogue", px=60_000)
    follower = Instance(fleet_config(fleet_store.url), "gw-0")
    registry = CollectorRegistry()
    instrument(follower.router, registry=registry)
    follower.monitor.start()
    try:
        wait("a follower", lambda: follower.mode == "follower")
        for n in range(40):  # two problems, alternating: each is logged once
            store.client.publish(store.channel, b"{}" if n % 2 else b"\xff")
        for n in range(1, 61):
            down = n % 2 == 1
            health = {"healthy": not down, "reason": f"r{n}" if down else None}
            snapshot = {
                "v": 1, "generation": 10**13 + n, "fence": 999, "leader": "rogue",
                "fingerprint": "x", "at": 1.0,
                "endpoints": {"ro-1": {**health, "detail": "", "since": 1.0}},
            }  # fmt: skip
            store.client.publish(store.channel, json.dumps(snapshot))
            wait(f"generation {n}", lambda n=n: follower.generation == 10**13 + n)
    finally:
        follower.monitor.stop()
        store.close()
    reasons = {
        sample.labels["reason"]
        for metric in registry.collect()
        if metric.name == "selectors_ejections"
        for sample in metric.samples
    }
    assert "r1" in reasons  # ejections were counted
    assert len(reasons) <= 20, sorted(reasons)
    drift = [r for r in caplog.records if "serves configuration" in r.getMessage()]
    assert len(drift) == 1, len(drift)
    invalid = [r for r in caplog.records if "invalid snapshot" in r.getMessage()]
    assert len(invalid) == 2, [r.getMessage() for r in invalid]


def test_stopping_the_asyncio_monitor_mid_round_leaves_no_lease_behind(
    fleet_store: StoreNode,
) -> None:
    # A follower's round waits (in the plane's thread) for a lease about to run
    # out. Cancelling the monitor then must not let that round take the lease
    # (and re-register) after the monitor was closed: the fleet would have a
    # leader that never publishes nor renews, for a whole lease.
    config = fleet_config(fleet_store.url)
    config["health"]["interval"] = 1.0
    config["health"]["shared"]["lease"] = 2.0
    follower = Instance(config, "gw-0")
    plane = follower.monitor._plane
    assert plane is not None
    store = FleetStore(SharedSettings(fleet_store.url, "t"))
    store.client.set(store.lease_key, "999:rogue", px=60_000)
    entered = threading.Event()
    acquire = plane.store.acquire

    def watched_acquire(instance: str, token: str) -> Any:
        entered.set()
        return acquire(instance, token)

    plane.store.acquire = watched_acquire  # type: ignore[method-assign]

    async def scenario() -> None:
        # What HealthMonitor.run does when cancelled mid-round: aclose().
        monitor = follower.monitor
        await monitor.arun_once()
        assert follower.mode == "follower"
        store.client.set(store.lease_key, "999:rogue", px=500)  # runs out before the next round
        entered.clear()
        round_ = asyncio.create_task(monitor.arun_once())
        await asyncio.to_thread(entered.wait, 10)
        executors.append(plane._executor)
        round_.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await round_
        await monitor.aclose()

    executors: list[Any] = []
    try:
        asyncio.run(scenario())
    finally:
        for executor in executors:
            if executor is not None:
                executor.shutdown(wait=True)  # the round in flight, if any, ends
        holder, _ = store.lease_holder()
        names = [name for name, _ in store.instances()]
        store.close()
    assert not holder.endswith(":gw-0"), holder
    assert "gw-0" not in names
    assert follower.mode == "stopped"


def test_a_hostile_instance_record_does_not_hide_the_rest_of_the_fleet(
    fleet_store: StoreNode, tmp_path: Path
) -> None:
    # Instance records are untrusted like snapshots: one nested past the JSON
    # parser's recursion limit (under the 4 KiB record cap) is skipped, not a
    # failure of the whole `selectors-lib fleet` report.
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(fleet_config(fleet_store.url)))
    store = FleetStore(SharedSettings(fleet_store.url, "t"))
    try:
        store.report("gw-good", {"mode": "follower", "generation": 7, "fingerprint": "x"})
        store.client.set(store.instance_prefix + "gw-evil", "[" * 2000 + "]" * 2000)
    finally:
        store.close()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["fleet", str(path), "--color", "never"])
    assert "gw-good" in out.getvalue(), err.getvalue()
    assert "gw-evil" not in out.getvalue()
    assert code == 1  # gw-good serves another fingerprint: drift


def test_one_hung_name_lookup_does_not_starve_the_other_endpoints(
    redis_set: RedisSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The asyncio probe resolves names on a few threads of its own. A lookup
    # that hangs (an unresponsive DNS server for one zone) used to start again
    # every round, until its stuck threads took every slot: then every other
    # endpoint's check failed with "too many name lookups in flight".
    release = threading.Event()
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "stuck.test":
            release.wait(30)  # a resolver that does not answer (released at the end)
            raise socket.gaierror("no answer")
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    replicas = [(eid, f"redis://localhost:{node.port}") for eid, node in redis_set.replicas.items()]
    settings = RedisLagProbeSettings(
        "lag",
        f"redis://localhost:{redis_set.master.port}",
        (*replicas, ("ro-3", "redis://stuck.test:6379")),
        max_lag_bytes=1 << 20,
    )
    probe = RedisLagProbe(settings)

    async def rounds() -> list[Any]:
        return [await probe.acheck(0.2) for _ in range(12)]

    try:
        results = asyncio.run(rounds())
    finally:
        release.set()
    for result in results[-3:]:
        seen = dict(result.observations)
        assert result.master_ok, result.detail
        assert seen["ro-1"].ok is True, seen["ro-1"]
        assert seen["ro-2"].ok is True, seen["ro-2"]
        assert seen["ro-3"].ok is False


def test_non_ascii_digits_in_the_lease_or_generation_are_not_a_crash(
    fleet_store: StoreNode, tmp_path: Path
) -> None:
    # str.isdigit() accepts "²", int() does not: a lease token or generation
    # written by someone else made every round of every instance raise (no
    # probing, no following) and `selectors-lib fleet` fail.
    store = FleetStore(SharedSettings(fleet_store.url, "t"))
    member = Instance(fleet_config(fleet_store.url), "gw-0")
    try:
        store.client.set(store.lease_key, "²:rogue", px=60_000)
        store.client.set(store.generation_key, "²")
        member.monitor.run_once()
        assert member.mode == "follower"
        path = tmp_path / "routes.json"
        path.write_text(json.dumps(fleet_config(fleet_store.url)))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(["fleet", str(path), "--color", "never"])
        assert "leader      rogue (fence 0" in out.getvalue(), err.getvalue()
        # A generation that is not a number does not keep a leader from publishing.
        store.client.delete(store.lease_key)
        member.monitor.run_once()
        assert member.mode == "leader"
        assert member.generation > 0
        assert store.client.get(store.generation_key) == str(member.generation).encode()
    finally:
        member.monitor.stop()
        store.close()


def test_the_stored_snapshot_is_read_within_its_cap_even_while_it_changes(
    fleet_store: StoreNode,
) -> None:
    # current() checked the size (STRLEN), then read the value (GET): a value
    # replaced in between was read whole, however large.
    settings = SharedSettings(fleet_store.url, "t", max_snapshot_bytes=1024)
    store = FleetStore(settings)
    writer = FleetStore(settings)
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            writer.client.set(writer.snapshot_key, b"{}")
            writer.client.set(writer.snapshot_key, b"x" * (1 << 20))

    thread = threading.Thread(target=swap, daemon=True)
    thread.start()
    try:
        sizes = {len(store.current() or b"") for _ in range(300)}
    finally:
        stop.set()
        thread.join(10)
        store.close()
        writer.close()
    assert max(sizes) <= 1025, sorted(sizes)[-3:]
