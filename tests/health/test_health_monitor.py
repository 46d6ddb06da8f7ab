"""The monitor's machinery: threads, asyncio, timeouts, events, never blocking select()."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import threading
import time

import pytest

from selectors_lib import Criteria, Event, LagEvent, Router, load_router
from selectors_lib.health import (
    GUARD_FACTOR,
    HealthMonitor,
    HealthSettings,
    HttpProbe,
    Observation,
    Probe,
    ProbeResult,
    build_probes,
)

GOOD = Observation(True, detail="ok", lag_bytes=10)
BAD = Observation(False, "probe", "refused")
WAIT = 30.0


def wait_for(what: str, condition: object, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for: {what}")
        time.sleep(0.01)


def make_router(health: dict[str, object] | None = None) -> Router:
    raw: dict[str, object] = {
        "endpoints": {"a": "http://a.internal", "b": "http://b.internal"},
        "routes": [
            {
                "name": "reads",
                "default": True,
                "target": {"endpoints": ["a", "b"], "hash_on": ["authenticated_user"]},
            }
        ],
    }
    if health is not None:
        raw["health"] = health
    return load_router(raw)


class Scripted:
    """A probe that answers from a script; optionally blocks until released."""

    def __init__(
        self, name: str = "grp", ids: tuple[str, ...] = ("a", "b"), *, lag: bool = False
    ) -> None:
        self.name = name
        self.endpoint_ids = ids
        self.measures_lag = lag
        self.result = ProbeResult(tuple((e, GOOD) for e in ids))
        self.release = threading.Event()
        self.release.set()
        self.calls = 0
        self.closed = 0
        self.error: Exception | None = None

    def check(self, timeout: float) -> ProbeResult:
        self.calls += 1
        self.release.wait(WAIT)
        if self.error is not None:
            raise self.error
        return self.result

    async def acheck(self, timeout: float) -> ProbeResult:
        self.calls += 1
        while not self.release.is_set():
            await asyncio.sleep(0.005)
        if self.error is not None:
            raise self.error
        return self.result

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.closed += 1


def test_scripted_probe_satisfies_the_protocol() -> None:
    assert isinstance(Scripted(), Probe)


def test_from_router_builds_probes_from_the_health_section() -> None:
    router = make_router(
        {"interval": 0.5, "probes": [{"type": "http", "name": "api", "endpoints": ["a", "b"]}]}
    )
    monitor = HealthMonitor.from_router(router)
    (probe,) = monitor.probes
    assert isinstance(probe, HttpProbe)
    assert probe.endpoint_ids == ("a", "b")
    assert monitor.settings.interval == 0.5
    assert build_probes(router.config.health)[0].name == "api"


def test_from_router_without_health_section() -> None:
    with pytest.raises(ValueError, match="no 'health' section"):
        HealthMonitor.from_router(make_router())


def test_duplicate_probe_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        HealthMonitor(make_router(), HealthSettings(), probes=[Scripted(), Scripted()])


def test_background_thread_ejects_and_stops_cleanly() -> None:
    router = make_router()
    probe = Scripted()
    monitor = HealthMonitor(
        router, HealthSettings(interval=0.01, eject_after=2, readmit_after=1), probes=[probe]
    )
    with monitor:
        with pytest.raises(RuntimeError, match="already running"):
            monitor.start()
        wait_for("a few rounds", lambda: monitor.status.rounds >= 3)
        probe.result = ProbeResult((("a", BAD), ("b", GOOD)))
        wait_for("a ejected", lambda: not router.health["a"].healthy)
        assert router.health["a"].reason == "probe"
        assert {router.select(Criteria(authenticated_user=f"u{i}")).id for i in range(50)} == {"b"}
        probe.result = ProbeResult((("a", GOOD), ("b", GOOD)))
        wait_for("a readmitted", lambda: router.health["a"].healthy)
    assert probe.closed >= 1
    rounds = monitor.status.rounds
    time.sleep(0.05)
    assert monitor.status.rounds == rounds, "no round runs after stop()"


def test_a_hung_probe_never_blocks_select_and_counts_as_failed() -> None:
    router = make_router()
    probe = Scripted()
    probe.release.clear()  # the probe hangs
    monitor = HealthMonitor(
        router, HealthSettings(timeout=0.01, eject_after=2, readmit_after=1), probes=[probe]
    )
    done = threading.Event()
    statuses = []

    def rounds() -> None:
        statuses.append(monitor.run_once())
        statuses.append(monitor.run_once())
        done.set()

    thread = threading.Thread(target=rounds)
    thread.start()
    # While the probe hangs, requests are routed as usual.
    for i in range(200):
        router.select(Criteria(authenticated_user=f"u{i}"))
    wait_for("both rounds to give up on the hung probe", done.is_set)
    thread.join()
    assert probe.calls == 1, "a probe still running is not started a second time"
    first, second = (dict(s.endpoints)["a"] for s in statuses)
    assert f"no answer within {0.01 * GUARD_FACTOR:g}s" in first.detail
    assert "previous check still running" in second.detail
    assert not router.health["a"].healthy
    assert not router.health["b"].healthy
    probe.release.set()
    monitor.close()


def test_a_probe_that_raises_counts_as_failed_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    router = make_router()
    probe = Scripted()
    probe.error = RuntimeError("boom")
    monitor = HealthMonitor(router, HealthSettings(eject_after=1), probes=[probe])
    with caplog.at_level(logging.ERROR, logger="selectors_lib.health"):
        status = monitor.run_once()
    assert "probe error: RuntimeError: boom" in status.endpoint("a").detail
    assert "probe grp failed" in caplog.text
    monitor.close()


def test_lag_events_for_lag_probes_only() -> None:
    router = make_router()
    lag = Scripted("lag", ("a",), lag=True)
    http = Scripted("http", ("b",))
    events: list[Event] = []
    router.events.subscribe(events.append)
    monitor = HealthMonitor(router, HealthSettings(), probes=[lag, http], clock=lambda: 7.0)
    status = monitor.run_once()
    assert events == [LagEvent("a", 10, 7.0)]
    assert status.probes[0].lag == (("a", 10),)
    assert status.to_dict()["probes"][0]["lag"] == {"a": 10}
    monitor.close()


def test_endpoint_dropped_by_a_reload_is_ignored() -> None:
    router = make_router()
    probe = Scripted()
    probe.result = ProbeResult((("a", BAD), ("b", BAD)))
    monitor = HealthMonitor(router, HealthSettings(eject_after=1), probes=[probe])
    router.reload(
        {
            "endpoints": {"b": "http://b.internal"},
            "routes": [{"name": "reads", "default": True, "target": "b"}],
        }
    )
    monitor.run_once()
    assert dict(router.health) == {"b": router.health["b"]}
    assert not router.health["b"].healthy
    monitor.close()


def test_observations_for_unknown_endpoints_are_dropped() -> None:
    router = make_router()
    probe = Scripted(ids=("a",))
    probe.result = ProbeResult((("a", GOOD), ("b", BAD)))
    monitor = HealthMonitor(router, HealthSettings(eject_after=1), probes=[probe])
    monitor.run_once()
    assert router.health["b"].healthy
    monitor.close()


def test_asyncio_run_and_guard() -> None:
    router = make_router()
    probe = Scripted()
    monitor = HealthMonitor(
        router,
        HealthSettings(interval=0.01, timeout=0.01, eject_after=1, readmit_after=1),
        probes=[probe],
    )

    async def scenario() -> None:
        status = await monitor.arun_once()
        assert status.rounds == 1
        assert router.health["a"].healthy
        probe.release.clear()  # hangs: the guard gives up after GUARD_FACTOR timeouts
        status = await monitor.arun_once()
        assert "no answer within" in status.endpoint("a").detail
        assert not router.health["a"].healthy
        probe.release.set()
        async with monitor:
            with pytest.raises(RuntimeError, match="already running"):
                await monitor.__aenter__()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT
            while not router.health["a"].healthy:
                assert loop.time() < deadline, "a never readmitted"
                await asyncio.sleep(0.01)
        rounds = monitor.status.rounds
        await asyncio.sleep(0.05)
        assert monitor.status.rounds == rounds, "the task is gone after the block"

    asyncio.run(scenario())
    assert probe.closed >= 1


def test_redis_probe_needs_no_redis_client_library() -> None:
    # The probe speaks RESP itself (bounded deadline and reply size): redis-py is
    # neither imported nor needed, so the probe works without the extra.
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "from selectors_lib import load_router\n"
        "from selectors_lib.health import HealthMonitor, RedisLagProbe\n"
        "router = load_router({'endpoints': {'a': 'redis://a:6379'},"
        " 'routes': [{'name': 'r', 'default': True, 'target': 'a'}],"
        " 'health': {'probes': [{'type': 'redis_lag', 'master': 'redis://m:6379',"
        " 'replicas': ['a']}]}})\n"
        "monitor = HealthMonitor.from_router(router)\n"
        "assert isinstance(monitor.probes[0], RedisLagProbe)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_asyncio_hung_probe_is_not_started_again_until_it_returns() -> None:
    router = make_router()
    probe = Scripted()
    probe.release.clear()  # the probe hangs
    monitor = HealthMonitor(
        router, HealthSettings(timeout=0.01, eject_after=2, readmit_after=1), probes=[probe]
    )

    async def scenario() -> None:
        first = await monitor.arun_once()
        second = await monitor.arun_once()
        assert probe.calls == 1, "a probe still running is not started a second time"
        assert f"no answer within {0.01 * GUARD_FACTOR:g}s" in first.endpoint("a").detail
        assert "previous check still running" in second.endpoint("a").detail
        assert not router.health["a"].healthy
        probe.release.set()  # it returns: the next round starts it again
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while probe.calls < 2:
            assert loop.time() < deadline, "the probe was never started again"
            await monitor.arun_once()
        await monitor.aclose()

    asyncio.run(scenario())


def test_asyncio_aclose_cancels_a_hung_check() -> None:
    probe = Scripted()
    probe.release.clear()
    monitor = HealthMonitor(make_router(), HealthSettings(timeout=0.01), probes=[probe])

    async def scenario() -> None:
        await monitor.arun_once()
        (task,) = monitor._atasks.values()
        assert not task.done()
        await monitor.aclose()
        assert task.cancelled()

    asyncio.run(scenario())


def test_churn_only_for_probes_with_a_master(caplog: pytest.LogCaptureFixture) -> None:
    router = load_router(
        {
            "endpoints": {e: f"http://{e}.internal" for e in ("a", "b", "c", "d")},
            "routes": [
                {"name": "ab", "match": {"origin": "x"}, "target": {"endpoints": ["a", "b"]}},
                {"name": "cd", "default": True, "target": {"endpoints": ["c", "d"]}},
            ],
        }
    )
    http = Scripted("http", ("a", "b"))
    lag = Scripted("lag", ("c", "d"), lag=True)
    for probe in (http, lag):
        probe.result = ProbeResult(tuple((e, BAD) for e in probe.endpoint_ids))
    monitor = HealthMonitor(router, HealthSettings(eject_after=1), probes=[http, lag])
    with caplog.at_level(logging.WARNING, logger="selectors_lib.health"):
        status = monitor.run_once()
    # Every endpoint is ejected, but only the group with a master is churning.
    assert not any(h.healthy for h in router.health.values())
    assert status.churning == ("lag",)
    assert "master churn in lag" in caplog.text
    assert "master churn in http" not in caplog.text
    monitor.close()
