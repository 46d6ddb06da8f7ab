"""Metrics regressions found by the review (each test reproduced a defect)."""

from __future__ import annotations

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from ops_helpers import config_a
from prometheus_client import CollectorRegistry

from selectors_lib import load_router
from selectors_lib.otel import instrument as otel_instrument
from selectors_lib.prometheus import instrument as prometheus_instrument


def test_ejection_reasons_are_bounded_in_both_backends() -> None:
    # A reason can come from outside (a fleet snapshot): each distinct value
    # used to be a new series, kept forever.
    router = load_router(config_a())
    registry = CollectorRegistry()
    prometheus_instrument(router, registry=registry)
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    otel_instrument(router, meter=provider.get_meter("test"))
    try:
        router.mark_down("r1", reason="lag")
        for n in range(40):
            router.mark_up("r1")
            router.mark_down("r1", reason=f"invented-{n}")
        prometheus = {
            sample.labels["reason"]
            for metric in registry.collect()
            if metric.name == "selectors_ejections"
            for sample in metric.samples
        }
        data = reader.get_metrics_data()
        assert data is not None
        otel = {
            point.attributes["selectors.ejection.reason"]
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "selectors.endpoint.ejections"
            for point in metric.data.data_points
        }
    finally:
        provider.shutdown()
    for reasons in (prometheus, otel):
        assert {"lag", "invented-0", "invented-15", "other"} <= reasons, sorted(reasons)
        assert "invented-16" not in reasons
        assert len(reasons) == 18
