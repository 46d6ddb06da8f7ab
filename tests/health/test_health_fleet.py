"""The shared health plane with a real redis-server: leadership, fencing, following, fallback.

Several fleet members run in this process (each a router, a monitor and a
scripted probe); they meet only through the store, as separate processes do
(tests/health/test_health_fleet_processes.py runs them as processes).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from health_fleet_support import BAD, LEASE, Instance, StoreNode, fleet_config, wait
from health_redis_nodes import LagProxy

from selectors_lib import Criteria, Event, FleetEvent, load_router
from selectors_lib.cli import main
from selectors_lib.health import FleetSnapshot, encode_snapshot
from selectors_lib.health._lease import FleetStore
from selectors_lib.health._shared_settings import SharedSettings
from selectors_lib.prometheus import instrument

pytestmark = pytest.mark.redis


@pytest.fixture
def fleet(fleet_store: StoreNode) -> Iterator[list[Instance]]:
    members = [Instance(fleet_config(fleet_store.url), f"gw-{i}") for i in range(3)]
    try:
        for member in members:
            member.monitor.start()
        wait("one leader, two followers", lambda: sorted(m.mode for m in members)
             == ["follower", "follower", "leader"])  # fmt: skip
        yield members
    finally:
        for member in members:
            member.monitor.stop()


def leader_of(members: list[Instance]) -> Instance:
    return next(m for m in members if m.mode == "leader")


def test_followers_apply_the_leaders_verdicts_without_probing(fleet: list[Instance]) -> None:
    leader = leader_of(fleet)
    followers = [m for m in fleet if m is not leader]
    checks = [m.probe.checks for m in followers]
    # Only the leader sees ro-2 fail: the whole fleet ejects it all the same.
    leader.probe.answer["ro-2"] = BAD
    wait("every member ejects ro-2", lambda: all(m.down() == {"ro-2"} for m in fleet))
    wait("one generation", lambda: {m.generation for m in fleet} == {leader.generation})
    assert [m.probe.checks for m in followers] == checks  # followers never probed
    rounds = followers[0].monitor.status.rounds
    wait("a follower's rounds count", lambda: followers[0].monitor.status.rounds > rounds)
    assert followers[0].monitor.status.endpoint("ro-2").ejected
    assert {m.monitor.fleet.leader for m in fleet} == {leader.name}  # type: ignore[union-attr]
    assert followers[0].router.health["ro-2"].reason == "probe"
    leader.probe.answer["ro-2"] = leader.probe.answer["ro-1"]
    wait("every member readmits ro-2", lambda: all(m.down() == set() for m in fleet))


def test_a_new_leader_takes_over_within_the_lease_and_keeps_the_fleets_view(
    fleet: list[Instance], fleet_store: StoreNode
) -> None:
    old = leader_of(fleet)
    for member in fleet:
        member.probe.answer["ro-3"] = BAD
    wait("ro-3 ejected everywhere", lambda: all(m.down() == {"ro-3"} for m in fleet))
    generation = old.generation
    store = FleetStore(SharedSettings(fleet_store.url, "t"))
    old_fence = int(store.lease_holder()[0].partition(":")[0])
    # A crash, not a clean stop: the lease is not released and must run out.
    old.monitor._stop.set()
    assert old.monitor._plane is not None
    old.monitor._plane._stop.set()
    survivors = [m for m in fleet if m is not old]
    wait("a survivor leads", lambda: any(m.mode == "leader" for m in survivors), LEASE * 20)
    new = leader_of(survivors)
    wait("the new leader publishes", lambda: new.generation > generation)
    # Seeded from the snapshots it followed: ro-3 never came back in between.
    assert all(m.down() == {"ro-3"} for m in survivors)
    try:
        fence = int(store.lease_holder()[0].partition(":")[0])
    finally:
        store.close()
    assert fence > old_fence  # a new fencing number for the new leader


def test_a_stale_leader_cannot_publish(fleet: list[Instance], fleet_store: StoreNode) -> None:
    leader = leader_of(fleet)
    plane = leader.monitor._plane
    assert plane is not None
    stale_token = plane._token
    store = FleetStore(SharedSettings(fleet_store.url, "t"))
    try:
        # The lease ran out behind the leader's back and someone else took it.
        store.client.delete(store.lease_key)
        other = store.acquire("intruder", "")
        assert other.acquired
        snapshot = FleetSnapshot(2**62, 1, leader.name, "x", 1.0, ())
        result = store.publish(stale_token, 2**62, encode_snapshot(snapshot))
        assert result.fenced
        assert not result.published
        assert store.client.get(store.generation_key) != str(2**62).encode()
        wait("the old leader steps down", lambda: leader.mode == "follower")
    finally:
        store.close()


def test_followers_reject_hostile_snapshots_and_never_go_back(
    fleet: list[Instance], fleet_store: StoreNode, caplog: pytest.LogCaptureFixture
) -> None:
    leader = leader_of(fleet)
    leader.probe.answer["ro-1"] = BAD
    wait("ro-1 ejected everywhere", lambda: all(m.down() == {"ro-1"} for m in fleet))
    generation = leader.generation
    store = FleetStore(SharedSettings(fleet_store.url, "t"))
    rogue = store.client
    older = {
        "v": 1, "generation": generation - 1, "fence": 1, "leader": "rogue",
        "fingerprint": "x", "at": 1.0,
        "endpoints": {eid: {"healthy": True, "reason": None, "detail": "", "since": 1.0}
                      for eid in ("ro-1", "ro-2", "ro-3")},
    }  # fmt: skip
    newer_bad = dict(older, generation=generation + 10**9, endpoints={"ro-1": {"healthy": "yes"}})
    caplog.set_level(logging.WARNING, "selectors_lib.health.shared")
    try:
        for payload in (
            b"\x00\xff not json",
            b"[" * 100_000,
            b"{}",
            json.dumps(newer_bad).encode(),
            json.dumps(dict(older, generation=-5)).encode(),
            b"x" * (2 << 20),  # over the size cap
            json.dumps(older).encode(),  # valid, but older than what was applied
        ):
            rogue.publish(store.channel, payload)
        rogue.set(store.snapshot_key, b"[" * 100_000)
        rogue.set(store.generation_key, generation + 10**9)  # makes followers read the key
        # A valid snapshot from the real leader still gets through afterwards.
        leader.probe.answer["ro-1"] = leader.probe.answer["ro-2"]
        leader.probe.answer["ro-3"] = BAD
        wait("ro-3 ejected everywhere", lambda: all(m.down() == {"ro-3"} for m in fleet))
    finally:
        store.close()
    assert all(m.monitor._plane._listener.is_alive() for m in fleet if m.monitor._plane)  # type: ignore[union-attr]
    assert "ignored an invalid snapshot" in caplog.text
    assert all(m.generation > generation + 10**9 for m in fleet)


def test_operators_still_win_on_a_follower(fleet: list[Instance]) -> None:
    leader = leader_of(fleet)
    follower = next(m for m in fleet if m is not leader)
    follower.router.mark_down("ro-1", detail="maintenance")
    leader.probe.answer["ro-2"] = BAD
    wait("ro-2 ejected on the follower", lambda: follower.down() == {"ro-1", "ro-2"})
    leader.probe.answer["ro-2"] = leader.probe.answer["ro-3"]
    wait("ro-2 readmitted", lambda: follower.down() == {"ro-1"})
    assert follower.router.health["ro-1"].reason == "manual"


def test_store_outage_falls_back_to_local_probing_and_rejoins(
    fleet: list[Instance], fleet_store: StoreNode, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Event] = []
    fleet[0].router.events.subscribe(events.append)
    caplog.set_level(logging.WARNING, "selectors_lib.health.shared")
    fleet_store.kill()
    wait("every member probes locally", lambda: all(m.mode == "local" for m in fleet))
    assert "store unreachable, probing locally" in caplog.text
    assert any(isinstance(e, FleetEvent) and e.mode == "local" for e in events)
    # Locally, each member judges for itself.
    fleet[1].probe.answer["ro-2"] = BAD
    wait("member 1 ejects ro-2 on its own", lambda: fleet[1].down() == {"ro-2"})
    assert fleet[0].down() == set()
    fleet_store.restart()  # empty: no lease, no generation
    wait(
        "one leader again",
        lambda: sorted(m.mode for m in fleet) == ["follower", "follower", "leader"],
    )
    leader = leader_of(fleet)
    # Converged on the new leader's view, whatever it is.
    wait("one view", lambda: len({frozenset(m.down()) for m in fleet}) == 1)
    wait("one generation", lambda: len({m.generation for m in fleet}) == 1)
    for member in fleet:
        member.probe.answer["ro-2"] = BAD
    wait("ro-2 ejected everywhere", lambda: all(m.down() == {"ro-2"} for m in fleet))
    assert leader.mode == "leader"


def test_the_asyncio_monitor_follows_and_leads(fleet_store: StoreNode) -> None:
    config = fleet_config(fleet_store.url, "async")
    threaded = Instance(config, "threaded")
    aio = Instance(config, "asyncio")

    async def scenario() -> None:
        async with aio.monitor:
            await asyncio.sleep(0.3)
            threaded.monitor.start()
            try:
                await asyncio.to_thread(
                    wait, "two modes", lambda: {aio.mode, threaded.mode} == {"leader", "follower"}
                )
                leader = aio if aio.mode == "leader" else threaded
                leader.probe.answer["ro-1"] = BAD
                await asyncio.to_thread(
                    wait, "ro-1 ejected in both", lambda: aio.down() == threaded.down() == {"ro-1"}
                )
                assert aio.generation == threaded.generation
            finally:
                threaded.monitor.stop()

    asyncio.run(scenario())
    assert aio.monitor.fleet is not None
    assert threaded.monitor.fleet is not None


def test_mode_generation_and_fingerprint_reach_prometheus(fleet: list[Instance]) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    follower = next(m for m in fleet if m.mode == "follower")
    registry = CollectorRegistry()
    instrument(follower.router, registry=registry)
    leader_of(fleet).probe.answer["ro-1"] = BAD
    wait("ro-1 ejected on the follower", lambda: follower.down() == {"ro-1"})
    text = generate_latest(registry).decode()
    assert 'selectors_fleet_mode{mode="follower"} 1.0' in text
    assert 'selectors_fleet_mode{mode="leader"} 0.0' in text
    assert registry.get_sample_value("selectors_fleet_health_generation") == follower.generation
    fingerprint = follower.router.fingerprint
    assert f'selectors_config_fingerprint_info{{fingerprint="{fingerprint}"}} 1.0' in text


def test_the_fleet_command_shows_leader_snapshot_and_instances(
    fleet: list[Instance], fleet_store: StoreNode, tmp_path: Path
) -> None:
    leader = leader_of(fleet)
    leader.probe.answer["ro-2"] = BAD
    wait("ro-2 ejected everywhere", lambda: all(m.down() == {"ro-2"} for m in fleet))
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(fleet_config(fleet_store.url)))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["fleet", str(path), "--color", "never"])
    text = out.getvalue()
    assert code == 0, err.getvalue()
    assert f"leader      {leader.name} (fence " in text
    assert f"generation {leader.generation} by {leader.name}" in text
    assert "ejected     ro-2 (probe: refused)" in text
    assert text.count("in sync") == 3
    # A hostile snapshot in the store is reported, escaped, not trusted.
    store = FleetStore(SharedSettings(fleet_store.url, "t"))
    try:
        for member in fleet:
            member.monitor.stop()
        store.client.set(store.snapshot_key, b'{"v": "\\u001b[31m"}')
    finally:
        store.close()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["fleet", str(path), "--color", "never"])
    assert "invalid: unsupported snapshot version" in out.getvalue()
    assert "\x1b" not in out.getvalue()


def test_the_fleet_command_without_a_shared_section_or_store(tmp_path: Path) -> None:
    raw = fleet_config("redis://127.0.0.1:1")
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(raw))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        assert main(["fleet", str(path)]) == 4
    assert "cannot read the store" in err.getvalue()
    del raw["health"]["shared"]
    path.write_text(json.dumps(raw))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["fleet", str(path)]) == 2
    assert "no 'health.shared' section" in err.getvalue()


def test_explain_fleet_routes_as_the_fleet_does_now(
    fleet: list[Instance], fleet_store: StoreNode, tmp_path: Path
) -> None:
    leader = leader_of(fleet)
    leader.probe.answer["ro-2"] = BAD
    wait("ro-2 ejected everywhere", lambda: all(m.down() == {"ro-2"} for m in fleet))
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(fleet_config(fleet_store.url)))
    fresh = load_router(str(path))
    user = next(
        f"u{i}"
        for i in range(1000)
        if fresh.select(Criteria(authenticated_user=f"u{i}")).id == "ro-2"
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["explain", str(path), "--user", user, "--fleet", "--json"]) == 0
    decision = json.loads(out.getvalue())
    assert decision["fleet"]["generation"] == leader.generation
    assert decision["fleet"]["leader"] == leader.name
    assert decision["first_choice"] == "ro-2"
    assert (
        decision["endpoint"]["id"]
        == leader.router.select(Criteria(authenticated_user=user)).id
        != "ro-2"
    )
    assert decision["skipped"] == [{"endpoint": "ro-2", "reason": "down (probe: refused)"}]


def test_a_follower_cut_off_from_the_store_rejoins_the_fleets_view(
    fleet: list[Instance], fleet_store: StoreNode
) -> None:
    # A fourth member reaches the store through a relay the test can stall: a
    # partition between it and the store only.
    relay = LagProxy(fleet_store.port)
    cut = Instance(fleet_config(f"redis://127.0.0.1:{relay.port}"), "cut")
    cut.monitor.start()
    try:
        wait("it follows", lambda: cut.mode == "follower")
        leader = leader_of(fleet)
        generation = leader.generation
        relay.stall()
        wait("it probes on its own", lambda: cut.mode == "local")
        cut.probe.answer["ro-1"] = BAD  # only it sees ro-1 fail
        wait("it ejects ro-1 on its own", lambda: cut.down() == {"ro-1"})
        relay.resume()
        # Back in the plane: the fleet's view again, though nothing new was published.
        wait("it follows again", lambda: cut.mode == "follower")
        wait("ro-1 is back in its pools", lambda: cut.down() == set())
        assert leader.generation == generation
        assert all(m.down() == set() for m in fleet)
    finally:
        cut.monitor.stop()
        relay.close()
