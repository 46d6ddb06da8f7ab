"""Per-endpoint gauges follow reloads: exactly the endpoints the watched routers serve.

Both backends are read back the way a user reads them: Prometheus through the
text exposition format, OpenTelemetry through the SDK's in-memory reader.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from ops_helpers import scrape, value
from prometheus_client import CollectorRegistry

from selectors_lib import (
    ConfigError,
    Criteria,
    Event,
    LagEvent,
    ReloadEvent,
    Router,
    load_config,
    load_router,
)
from selectors_lib.otel import OTelObserver
from selectors_lib.prometheus import PrometheusObserver


def config(*ids: str) -> dict[str, Any]:
    """One default route over a pool of ``ids``."""
    return {
        "version": 1,
        "endpoints": {i: f"http://{i}.internal" for i in ids},
        "routes": [
            {
                "name": "default",
                "default": True,
                "target": {"endpoints": list(ids), "hash_on": ["execution_id"]},
            }
        ],
    }


def lag(router: Router, endpoint_id: str, lag_bytes: int) -> None:
    router.events.emit(LagEvent(endpoint_id, lag_bytes, time.time()))


class Prometheus:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.observer = PrometheusObserver(self.registry)

    def _gauge(self, name: str) -> dict[str, float]:
        return {
            dict(labels)["endpoint"]: v
            for (sample, labels), v in scrape(self.registry).items()
            if sample == name
        }

    def up(self) -> dict[str, float]:
        return self._gauge("selectors_endpoint_up")

    def lag(self) -> dict[str, float]:
        return self._gauge("selectors_replica_lag_bytes")

    def counted(self) -> dict[str, float]:
        return self._gauge("selectors_decisions_total")


class OTel:
    def __init__(self, provider: MeterProvider, reader: InMemoryMetricReader) -> None:
        self.reader = reader
        self.observer = OTelObserver(provider.get_meter("test"))

    def _points(self, name: str) -> dict[str, float]:
        data = self.reader.get_metrics_data()
        assert data is not None
        out: dict[str, float] = {}
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            out[str(point.attributes["selectors.endpoint"])] = point.value
        return out

    def up(self) -> dict[str, float]:
        return self._points("selectors.endpoint.up")

    def lag(self) -> dict[str, float]:
        return self._points("selectors.replica.lag")

    def counted(self) -> dict[str, float]:
        return self._points("selectors.decisions")


Backend = Prometheus | OTel


@pytest.fixture(params=["prometheus", "otel"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "prometheus":
        yield Prometheus()
        return
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    yield OTel(provider, reader)
    provider.shutdown()


def test_a_reload_forgets_removed_endpoints_and_series_do_not_accumulate(
    backend: Backend,
) -> None:
    router = load_router(config("a", "b", "c"))
    backend.observer.observe(router)
    for endpoint_id in ("a", "b", "c"):
        router.select(Criteria(execution_id=f"to-{endpoint_id}"))
    lag(router, "a", 10)
    lag(router, "b", 20)
    router.mark_down("b", reason="lag")
    assert backend.up() == {"a": 1, "b": 0, "c": 1}
    counted_before = backend.counted()

    router.reload(config("a", "c"))
    # The "b is down" alert resolves: its series is gone, not stuck at 0.
    assert backend.up() == {"a": 1, "c": 1}
    assert backend.lag() == {"a": 10}

    for n in range(3):
        router.reload(config(f"x{n}", f"y{n}"))
        assert backend.up() == {f"x{n}": 1, f"y{n}": 1}
        assert backend.lag() == {}
    # Counters keep their history.
    assert backend.counted() == counted_before

    # An endpoint that comes back starts healthy, like its health does.
    router.reload(config("b", "x2"))
    assert backend.up() == {"b": 1, "x2": 1}


def test_a_failed_reload_forgets_nothing(backend: Backend) -> None:
    router = load_router(config("a", "b"))
    backend.observer.observe(router)
    router.mark_down("b")
    with pytest.raises(ConfigError):
        router.reload(config())  # an empty pool does not load
    assert backend.up() == {"a": 1, "b": 0}


def test_flip_to_a_new_stack_with_replace_config(backend: Backend) -> None:
    # docs/health.md "flip": replace every replica at once.
    router = load_router(config("old-1", "old-2"))
    backend.observer.observe(router)
    lag(router, "old-1", 5_000_000)
    router.mark_down("old-1", reason="lag")

    router.replace_config(load_config(config("new-1", "new-2")))
    assert backend.up() == {"new-1": 1, "new-2": 1}
    assert backend.lag() == {}
    # The monitor still watching the old stack (until it is moved) cannot
    # bring a retired replica's series back.
    lag(router, "old-1", 6_000_000)
    router.events.emit(ReloadEvent(False, None, "unrelated", time.time()))
    assert backend.lag() == {}
    assert backend.up() == {"new-1": 1, "new-2": 1}
    lag(router, "new-2", 0)
    assert backend.lag() == {"new-2": 0}


def test_an_endpoint_shared_by_two_routers_stays_while_either_serves_it(
    backend: Backend,
) -> None:
    first = load_router(config("shared", "p"))
    second = load_router(config("shared", "q"))
    backend.observer.observe(first)
    stop_second = backend.observer.observe(second)
    lag(first, "shared", 7)
    assert backend.up() == {"shared": 1, "p": 1, "q": 1}

    first.reload(config("p"))
    assert backend.up() == {"shared": 1, "p": 1, "q": 1}  # second still serves it
    assert backend.lag() == {"shared": 7}
    second.mark_down("shared")
    assert backend.up() == {"shared": 0, "p": 1, "q": 1}

    second.reload(config("q"))
    assert backend.up() == {"p": 1, "q": 1}
    assert backend.lag() == {}

    # Unwatching a router forgets what only it served.
    stop_second()
    assert backend.up() == {"p": 1}


def test_a_shared_endpoint_is_down_while_any_router_ejects_it(backend: Backend) -> None:
    first = load_router(config("shared", "p"))
    second = load_router(config("shared", "q"))
    backend.observer.observe(first)
    backend.observer.observe(second)
    first.mark_down("shared")
    assert backend.up()["shared"] == 0
    second.reload(config("shared", "q", "r"))  # the reload re-records both routers
    assert backend.up() == {"shared": 0, "p": 1, "q": 1, "r": 1}
    first.mark_up("shared")
    assert backend.up()["shared"] == 1


def test_lag_between_the_swap_and_its_reload_event(backend: Backend) -> None:
    # An observer subscribed first sees the ReloadEvent first; a LagEvent it
    # emits then reaches the metrics observer after the swap but before the
    # ReloadEvent: the lag of a new endpoint counts, a removed one's does not stay.
    router = load_router(config("a", "b"))

    def monitor(event: Event) -> None:
        if isinstance(event, ReloadEvent) and event.ok:
            lag(router, "c", 3)
            lag(router, "b", 4)

    router.events.subscribe(monitor)
    backend.observer.observe(router)
    router.reload(config("a", "c"))
    assert backend.lag() == {"c": 3}
    assert backend.up() == {"a": 1, "c": 1}


def test_prometheus_exposition_text_after_reload() -> None:
    backend = Prometheus()
    router = load_router(config("a", "b", "c"))
    backend.observer.observe(router)
    router.mark_down("b", reason="probe")
    router.reload(config("a", "c"))
    samples = scrape(backend.registry)
    assert ("selectors_endpoint_up", frozenset({("endpoint", "b")})) not in samples
    # Counters keep their series (Prometheus convention).
    assert value(samples, "selectors_ejections_total", endpoint="b", reason="probe") == 1
    assert value(samples, "selectors_config_reloads_total", result="ok") == 1


IDS = ("e0", "e1", "e2", "e3", "e4")
subsets = st.lists(st.sampled_from(IDS), min_size=1, max_size=len(IDS), unique=True)
steps = st.lists(
    st.tuples(
        st.integers(0, 1),  # which router
        st.sampled_from(["reload", "down", "up", "lag"]),
        subsets,
    ),
    max_size=12,
)


@settings(max_examples=40)
@given(first=subsets, second=subsets, steps=steps)
def test_gauges_list_exactly_the_served_endpoints(
    first: Sequence[str], second: Sequence[str], steps: Sequence[tuple[int, str, Sequence[str]]]
) -> None:
    backend = Prometheus()
    routers = [load_router(config(*first)), load_router(config(*second))]
    for router in routers:
        backend.observer.observe(router)
    lagged: set[str] = set()
    for index, action, ids in steps:
        router = routers[index]
        served = {e.id for e in router.endpoints}
        served_any = {e.id for r in routers for e in r.endpoints}
        if action == "reload":
            router.reload(config(*ids))
        elif action in ("down", "up"):
            for endpoint_id in sorted(served & set(ids)):
                (router.mark_down if action == "down" else router.mark_up)(endpoint_id)
        else:
            for endpoint_id in ids:
                lag(router, endpoint_id, 1)
                if endpoint_id in served_any:
                    lagged.add(endpoint_id)
        expected: dict[str, float] = {}
        for r in routers:
            for endpoint_id, health in r.health.items():
                expected[endpoint_id] = min(expected.get(endpoint_id, 1), int(health.healthy))
        assert backend.up() == expected
        lagged &= expected.keys()
        assert set(backend.lag()) == lagged
