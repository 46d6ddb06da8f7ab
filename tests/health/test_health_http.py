"""The HTTP health probe against real local HTTP servers, asserted through the router."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from health_http_servers import Backend

from selectors_lib import Criteria, Router, load_router
from selectors_lib.health import HealthMonitor, HttpProbe, HttpProbeSettings


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    servers = [Backend(), Backend()]
    try:
        yield servers
    finally:
        for server in servers:
            server.close()


def make_router(backends: list[Backend], **probe: object) -> Router:
    return load_router(
        {
            "endpoints": {"api-1": backends[0].url, "api-2": backends[1].url + "/"},
            "routes": [
                {
                    "name": "api",
                    "default": True,
                    "target": {"endpoints": ["api-1", "api-2"], "hash_on": ["application"]},
                }
            ],
            "health": {
                "interval": 0.05,
                "timeout": 0.2,
                "eject_after": 2,
                "readmit_after": 2,
                "probes": [{"type": "http", "endpoints": ["api-1", "api-2"], **probe}],
            },
        }
    )


APPS = tuple(Criteria(application=f"app{i}") for i in range(60))


def test_unexpected_status_ejects_and_recovery_readmits(backends: list[Backend]) -> None:
    router = make_router(backends, path="/ready", expect_status=[200, 204])
    monitor = HealthMonitor.from_router(router)
    monitor.run_once()
    assert backends[0].paths == ["/ready"]
    assert backends[1].paths == ["/ready"]
    backends[0].status = 503
    monitor.run_once()
    assert router.health["api-1"].healthy, "one bad observation is not enough"
    monitor.run_once()
    health = router.health["api-1"]
    assert (health.healthy, health.reason) == (False, "probe")
    assert "HTTP 503" in health.detail
    assert {router.select(c).id for c in APPS} == {"api-2"}
    backends[0].status = 204
    monitor.run_once()
    monitor.run_once()
    assert router.health["api-1"].healthy
    assert {router.select(c).id for c in APPS} == {"api-1", "api-2"}
    monitor.close()


def test_redirect_is_a_status_not_followed(backends: list[Backend]) -> None:
    probe = HttpProbe(HttpProbeSettings("h", (("x", backends[0].url),), "/health", (200,)))
    backends[0].status = 302
    (obs,) = (o for _, o in probe.check(1.0).observations)
    assert (obs.ok, obs.detail) == (False, f"HTTP 302 from {backends[0].url}/health")
    assert backends[0].paths == ["/health"], "the redirect was not followed"


def test_slow_and_unreachable_endpoints_are_bad(backends: list[Backend]) -> None:
    backends[0].delay = 0.5
    dead = Backend()
    dead.close()  # nothing listens on its port any more
    probe = HttpProbe(
        HttpProbeSettings(
            "h", (("slow", backends[0].url), ("dead", dead.url), ("ok", backends[1].url))
        )
    )
    result = dict(probe.check(0.1).observations)
    assert result["slow"].ok is False
    assert "timed out" in result["slow"].detail.lower()
    assert result["dead"].ok is False
    assert result["dead"].reason == "probe"
    assert result["ok"].ok is True
    probe.close()


def test_endpoints_are_probed_concurrently(backends: list[Backend]) -> None:
    # Each server answers only once both requests have arrived: probed one after the
    # other, the first would time out waiting for the second.
    barrier = threading.Barrier(2, timeout=10)
    for backend in backends:
        backend.gate = barrier
    probe = HttpProbe(HttpProbeSettings("h", (("a", backends[0].url), ("b", backends[1].url))))
    result = dict(probe.check(5.0).observations)
    assert result["a"].ok, result
    assert result["b"].ok, result
    probe.close()


def test_asyncio_check(backends: list[Backend]) -> None:
    backends[1].status = 500
    probe = HttpProbe(
        HttpProbeSettings("h", (("a", backends[0].url), ("b", backends[1].url)), "/h")
    )
    result = asyncio.run(probe.acheck(1.0))
    assert [(e, o.ok) for e, o in result.observations] == [("a", True), ("b", False)]
