"""The gateway: section of a configuration, and the proxy's own settings and lifespan."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from adapters_support import serve_asgi
from gateway_backends import Backend

from selectors_lib import ConfigError, HealthEvent, load_router
from selectors_lib._config import config_to_dict
from selectors_lib.asgi import SelectorsMiddleware
from selectors_lib.gateway import (
    GatewaySettings,
    OutlierDetector,
    OutlierSettings,
    RetrySettings,
    SelectorsProxy,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "gateway.md"


def base(gateway: object) -> dict[str, Any]:
    return {
        "endpoints": {"a": "http://a.internal", "b": "http://b.internal"},
        "routes": [
            {"name": "orca-writes", "match": {"application": "orca"}, "target": "a"},
            {"name": "main", "default": True, "target": {"endpoints": ["a", "b"]}},
        ],
        "gateway": gateway,
    }


def test_the_documented_section_loads_as_documented() -> None:
    text = DOC.read_text("utf-8")
    block = re.search(r"```yaml\n(gateway:.*?)```", text, re.S)
    assert block is not None
    settings = load_router(base(yaml.safe_load(block.group(1))["gateway"])).config.gateway
    assert isinstance(settings, GatewaySettings)
    assert settings.route("main") == settings.defaults
    orca = settings.route("orca-writes")
    assert (orca.first_byte_timeout, orca.retries) == (120, RetrySettings(tries=1))
    # Overrides keep the top-level values they do not name.
    assert orca.connect_timeout == settings.defaults.connect_timeout == 2


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    with pytest.raises(ConfigError) as caught:
        load_router(
            base(
                {
                    "connect_timeout": 0,
                    "max_connections": "many",
                    "retries": {"tries": 0, "budget": 2, "extra": 1},
                    "outlier": {"ejection_time": 10, "max_ejection_time": 5},
                    "routes": {"nope": {}, "main": {"idle_timeout": -1}},
                    "colour": "blue",
                }
            )
        )
    paths = sorted(issue.path for issue in caught.value.issues)
    assert paths == [
        "gateway.colour",
        "gateway.connect_timeout",
        "gateway.max_connections",
        "gateway.outlier.max_ejection_time",
        "gateway.retries.budget",
        "gateway.retries.extra",
        "gateway.retries.tries",
        "gateway.routes.main.idle_timeout",
        "gateway.routes.nope",
    ]


def test_the_section_survives_a_round_trip() -> None:
    config = load_router(
        base({"first_byte_timeout": 5, "routes": {"main": {"retries": {"tries": 2}}}})
    ).config
    again = load_router(config_to_dict(config)).config
    assert again.gateway == config.gateway


@pytest.fixture
def failing() -> Iterator[Backend]:
    backend = Backend("b")
    try:
        yield backend.start()
    finally:
        backend.close()


def health_config(backend: Backend) -> dict[str, Any]:
    return {
        "endpoints": {"b": backend.url},
        "routes": [{"name": "main", "default": True, "target": "b"}],
        "health": {
            "interval": 0.05,
            "timeout": 2,
            "eject_after": 1,
            "probes": [{"type": "http", "endpoints": ["b"], "path": "/status/503"}],
        },
    }


def wait_for_event(events: list[HealthEvent], what: str, count: int = 1) -> None:
    for _ in range(400):
        if len(events) >= count:
            return
        threading.Event().wait(0.025)
    raise AssertionError(f"never happened: {what}")


@pytest.mark.parametrize("adapter", ["proxy", "middleware"])
def test_the_configured_health_monitor_runs_with_the_lifespan(
    failing: Backend, adapter: str
) -> None:
    router = load_router(health_config(failing))
    events: list[HealthEvent] = []
    router.events.subscribe(lambda e: events.append(e) if isinstance(e, HealthEvent) else None)

    async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})

    app: Any = SelectorsProxy(router) if adapter == "proxy" else SelectorsMiddleware(hello, router)
    with serve_asgi(app, lifespan="on", proxy=True):
        # The probe's path answers 503: the monitor ejects the endpoint.
        wait_for_event(events, "the probe's ejection")
        assert (events[0].endpoint_id, events[0].reason) == ("b", "probe")
    count = len(events)
    threading.Event().wait(0.3)
    # Stopped with the lifespan: no more rounds, no more events.
    assert len(events) == count


def test_5xx_answers_eject_a_replica_until_the_ejection_ends(failing: Backend) -> None:
    other = Backend("c").start()
    try:
        router = load_router(
            {
                "endpoints": {"b": failing.url, "c": other.url},
                "routes": [
                    {
                        "name": "main",
                        "default": True,
                        "target": {
                            "endpoints": ["b", "c"],
                            "hash_on": ["application"],
                            "panic_threshold": 0.1,
                        },
                    }
                ],
                "gateway": {"outlier": {"consecutive_failures": 3, "ejection_time": 0.3}},
            }
        )
        events: list[HealthEvent] = []
        router.events.subscribe(lambda e: events.append(e) if isinstance(e, HealthEvent) else None)
        key = next(
            f"k{i}"
            for i in range(100)
            if router.explain(router_criteria(f"k{i}")).endpoint.id == "b"
        )
        with (
            serve_asgi(SelectorsProxy(router), lifespan="on", proxy=True) as url,
            httpx.Client(base_url=url, timeout=10) as client,
        ):
            headers = {"X-Spinnaker-Application": key}
            # 5xx answers are passed on (not retried), and counted.
            for _ in range(3):
                assert client.get("/status/500", headers=headers).status_code == 500
            assert [(e.endpoint_id, e.healthy, e.reason) for e in events] == [
                ("b", False, "outlier")
            ]
            assert client.get("/who", headers=headers).headers["x-backend"] == "c"
            wait_for_event(events, "the end of the ejection", count=2)
            assert (events[1].endpoint_id, events[1].healthy) == ("b", True)
            assert client.get("/who", headers=headers).headers["x-backend"] == "b"
    finally:
        other.close()


def router_criteria(application: str) -> Any:
    from selectors_lib import Criteria

    return Criteria(application=application)


def test_when_every_replica_is_ejected_the_pool_panics_and_keys_stay_put(
    failing: Backend,
) -> None:
    other = Backend("c").start()
    try:
        router = load_router(
            {
                "endpoints": {"b": failing.url, "c": other.url},
                "routes": [
                    {
                        "name": "main",
                        "default": True,
                        "target": {"endpoints": ["b", "c"], "hash_on": ["application"]},
                    }
                ],
                "gateway": {"outlier": {"consecutive_failures": 2, "ejection_time": 60}},
            }
        )
        owner = {
            app: router.explain(router_criteria(app)).endpoint.id
            for app in (f"k{i}" for i in range(20))
        }
        with (
            serve_asgi(SelectorsProxy(router), lifespan="on", proxy=True) as url,
            httpx.Client(base_url=url, timeout=10) as client,
        ):
            for app in owner:
                client.get("/status/500", headers={"X-Spinnaker-Application": app})
            assert {e.healthy for e in router.health.values()} == {False}
            # Both out: the pool routes as if both were healthy (panic), each
            # key to its own first choice, rather than nowhere.
            for app, endpoint in owner.items():
                seen = client.get("/who", headers={"X-Spinnaker-Application": app})
                assert seen.headers["x-backend"] == endpoint
    finally:
        other.close()


def test_without_httptools_configs_load_and_the_proxy_names_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['httptools'] = None\n"
        "from selectors_lib import load_router\n"
        "from selectors_lib.gateway import SelectorsProxy\n"
        "router = load_router({'routes': [{'name': 'm', 'default': True, 'target': {'endpoints':"
        " [{'id': 'a', 'url': 'http://a'}]}}], 'gateway': {'first_byte_timeout': 1}})\n"
        "assert router.config.gateway.defaults.first_byte_timeout == 1\n"
        "try:\n"
        "    SelectorsProxy(router)\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "pip install 'selectors-lib[gateway]'" in out


def test_a_replica_that_never_recovers_is_ejected_again_however_often() -> None:
    # Each ejection in a row doubles; a replica dead for days is ejected more
    # than a thousand times, and 2 ** 1024 seconds is past any float.
    router = load_router(base({}))
    settings = OutlierSettings(consecutive_failures=1, ejection_time=1e-6, max_ejection_time=1e-6)
    detector = OutlierDetector(router, settings)

    async def fail_for_ever() -> int:
        ejected = 0
        for _ in range(1100):
            detector.failure("a", "connect refused")
            ejected += not router.health["a"].healthy
            while not router.health["a"].healthy:  # until the ejection ends
                await asyncio.sleep(0)
        return ejected

    assert asyncio.run(fail_for_ever()) == 1100
