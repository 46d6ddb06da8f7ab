"""docs/operations.md stays true: its metric tables and config examples match the code.

(Its ```python blocks run in tests/docs/test_docs_examples.py with every page's.)
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import yaml
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from ops_helpers import config_a
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from selectors_lib import Criteria, FleetEvent, LagEvent, Router, load_config, load_router
from selectors_lib.otel import instrument as otel_instrument
from selectors_lib.prometheus import instrument as prometheus_instrument

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text("utf-8")


def table_rows(heading: str) -> list[list[str]]:
    """The body rows of the first table after ``heading``, cells stripped of backticks."""
    section = PAGE[PAGE.index(heading) :]
    rows = []
    for line in section.splitlines()[2:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        if set(cells[0]) <= {"-"}:
            continue
        rows.append(cells)
    return rows[1:]  # drop the header row


def exercise(router: Router) -> None:
    """Make ``router`` emit every kind of event."""
    c = Criteria(execution_id="e", attributes={"x-tenant": "t1"})
    first = router.select(c)
    router.mark_down(first, reason="probe")
    router.select(c)
    router.mark_up(first)
    for endpoint_id in ("r1", "r2", "r3"):
        router.mark_down(endpoint_id)
    router.select(c)  # panic
    router.reload(config_a())
    router.events.emit(LagEvent("r4", 10, time.time()))
    router.events.emit(FleetEvent("follower", 7, "gw-1", router.fingerprint, "", time.time()))


def test_prometheus_table_matches_exposition() -> None:
    registry = CollectorRegistry()
    router = load_router(config_a())
    prometheus_instrument(router, registry=registry)
    exercise(router)
    families = {
        f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())
    }
    documented = {}
    for name, kind, labels, _meaning in table_rows("### Prometheus (`selectors_lib.prometheus`)"):
        documented[name] = (kind, {x.strip("` ") for x in labels.split(",") if x.strip()})
    exposed = {}
    for family in families.values():
        if family.name.endswith("_created"):
            continue  # prometheus_client's creation timestamps, one per counter/histogram
        # The parser strips _total from counter family names.
        name = family.name + ("_total" if family.type == "counter" else "")
        label_names = {k for s in family.samples for k in s.labels if k not in {"le"}}
        exposed[name] = (family.type, label_names)
    assert exposed == documented


def test_otel_table_matches_instruments() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    try:
        router = load_router(config_a())
        otel_instrument(router, meter=provider.get_meter("docs"))
        exercise(router)
        data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    assert data is not None
    exposed = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                attributes = {k for p in metric.data.data_points for k in p.attributes}
                exposed[metric.name] = (metric.unit, attributes)
    documented = {}
    for name, _kind, unit, attributes, _meaning in table_rows(
        "### OpenTelemetry (`selectors_lib.otel`)"
    ):
        documented[name] = (unit, {x.strip("` ") for x in attributes.split(",") if x.strip()})
    assert exposed == documented


def test_yaml_examples_load() -> None:
    blocks = re.findall(r"^```yaml\n(.*?)^```", PAGE, re.S | re.M)
    assert blocks
    for block in blocks:
        config = load_config(yaml.safe_load(block))
        assert config.settings.regex_engine == "re2"
        assert config.warnings == ()
