"""OpenTelemetry adapter: metrics read back through the SDK's in-memory reader."""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from ops_helpers import config_a, config_b, with_changes

from selectors_lib import ConfigError, Criteria, LagEvent, load_router
from selectors_lib.otel import DEFAULT_BUCKETS, instrument


@pytest.fixture
def reader() -> Iterator[tuple[InMemoryMetricReader, MeterProvider]]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    yield reader, provider
    provider.shutdown()


def collect(reader: InMemoryMetricReader) -> dict[str, Any]:
    """``{metric name: metric}`` from one collection."""
    data = reader.get_metrics_data()
    assert data is not None
    return {
        metric.name: metric
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }


def points(metric: Any) -> dict[frozenset[tuple[str, Any]], Any]:
    return {frozenset(p.attributes.items()): p for p in metric.data.data_points}


def test_decisions_duration_and_failover(
    reader: tuple[InMemoryMetricReader, MeterProvider],
) -> None:
    memory, provider = reader
    router = load_router(config_a())
    instrument(router, meter=provider.get_meter("test"))
    criteria = Criteria(execution_id="exec-3", attributes={"x-tenant": "t2"})
    first = router.select(criteria)
    for _ in range(4):
        router.select(Criteria(application="App-1", execution_id="e"))
    router.mark_down(first)
    second = router.select(criteria)

    metrics = collect(memory)
    decisions = points(metrics["selectors.decisions"])
    cold = router.explain(Criteria(application="App-1", execution_id="e")).endpoint.id
    rule_ep = {"selectors.rule": "a-hot", "selectors.endpoint": first.id}
    assert decisions[frozenset(rule_ep.items())].value == 1
    cold_key = frozenset({"selectors.rule": "a-cold", "selectors.endpoint": cold}.items())
    assert decisions[cold_key].value == 4
    assert metrics["selectors.decisions"].unit == "{decision}"

    failover = points(metrics["selectors.failovers"])
    assert [(dict(k), p.value) for k, p in failover.items()] == [
        ({"selectors.rule": "a-hot", "selectors.endpoint": second.id}, 1)
    ]
    ejections = points(metrics["selectors.endpoint.ejections"])
    key = frozenset({"selectors.endpoint": first.id, "selectors.ejection.reason": "manual"}.items())
    assert ejections[key].value == 1

    duration = metrics["selectors.select.duration"]
    assert duration.unit == "s"
    (point,) = duration.data.data_points
    assert point.count == 6
    assert tuple(point.explicit_bounds) == DEFAULT_BUCKETS
    assert point.sum > 0

    up = {
        dict(k)["selectors.endpoint"]: p.value
        for k, p in points(metrics["selectors.endpoint.up"]).items()
    }
    assert up == {f"r{i}": (0 if f"r{i}" == first.id else 1) for i in range(1, 7)}


def test_reloads_readmission_and_lag(reader: tuple[InMemoryMetricReader, MeterProvider]) -> None:
    memory, provider = reader
    router = load_router(config_a())
    instrument(router, meter=provider.get_meter("test"))
    bigger = config_b()
    bigger["endpoints"]["r7"] = "http://r7.internal"
    bigger["routes"][2]["target"] = "r7"
    router.reload(bigger)
    with pytest.raises(ConfigError):
        router.reload(with_changes(config_b(), version=2))
    router.mark_down("r4", reason="lag")
    router.mark_up("r4")
    router.events.emit(LagEvent("r5", 2048, time.time()))
    router.events.emit(LagEvent("r6", 10, time.time()))
    router.events.emit(LagEvent("r6", None, time.time()))

    metrics = collect(memory)
    reloads = {
        dict(k)["selectors.reload.result"]: p.value
        for k, p in points(metrics["selectors.config.reloads"]).items()
    }
    assert reloads == {"ok": 1, "failed": 1}
    readmissions = points(metrics["selectors.endpoint.readmissions"])
    assert [(dict(k), p.value) for k, p in readmissions.items()] == [
        ({"selectors.endpoint": "r4"}, 1)
    ]
    up = points(metrics["selectors.endpoint.up"])
    assert up[frozenset({("selectors.endpoint", "r7")})].value == 1  # added by the reload
    lag = metrics["selectors.replica.lag"]
    assert lag.unit == "By"
    # An unreadable lag is no point at all, not a zero.
    assert {dict(k)["selectors.endpoint"]: p.value for k, p in points(lag).items()} == {"r5": 2048}


def test_missing_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "selectors_lib.otel")
    monkeypatch.setitem(sys.modules, "opentelemetry.metrics", None)
    with pytest.raises(ImportError, match=r"pip install 'selectors-lib\[otel\]'"):
        importlib.import_module("selectors_lib.otel")
