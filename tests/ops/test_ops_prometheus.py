"""Prometheus adapter: metrics read back from real text exposition output."""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
from collections import Counter

import pytest
from ops_helpers import config_a, config_b, is_nan, scrape, value, with_changes
from prometheus_client import CollectorRegistry, generate_latest

from selectors_lib import ConfigError, Criteria, LagEvent, load_router
from selectors_lib.prometheus import DEFAULT_BUCKETS, PrometheusObserver, instrument


def _requests() -> list[Criteria]:
    out = []
    for i in range(60):
        out.append(
            Criteria(
                application=f"app-{i % 7}" if i % 3 else f"other-{i}",
                execution_id=f"exec-{i}",
                attributes={"x-tenant": f"t{i % 9}"},
            )
        )
    return out


def test_decisions_and_latency_are_counted_by_rule_and_endpoint() -> None:
    router = load_router(config_a())
    registry = CollectorRegistry()
    instrument(router, registry=registry)
    expected: Counter[tuple[str, str]] = Counter()
    for criteria in _requests():
        decision = router.explain(criteria)  # explain emits no event
        assert router.select(criteria) == decision.endpoint
        expected[(decision.rule, decision.endpoint.id)] += 1

    samples = scrape(registry)
    got = {
        (dict(labels)["rule"], dict(labels)["endpoint"]): v
        for (name, labels), v in samples.items()
        if name == "selectors_decisions_total"
    }
    assert got == {k: float(v) for k, v in expected.items()}
    assert len({rule for rule, _ in expected}) == 3  # all three rules were exercised
    assert value(samples, "selectors_select_duration_seconds_count") == 60
    assert value(samples, "selectors_select_duration_seconds_sum") > 0
    # Cumulative buckets, the configured bounds plus +Inf.
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in samples.items()
        if name == "selectors_select_duration_seconds_bucket"
    )
    assert [b for b, _ in buckets] == [*DEFAULT_BUCKETS, float("inf")]
    counts = [v for _, v in buckets]
    assert counts == sorted(counts)
    assert counts[-1] == 60


def test_failover_ejection_and_readmission() -> None:
    router = load_router(config_a())
    registry = CollectorRegistry()
    instrument(router, registry=registry)
    criteria = Criteria(execution_id="exec-7", attributes={"x-tenant": "t1"})
    first = router.select(criteria)
    assert value(scrape(registry), "selectors_endpoint_up", endpoint=first.id) == 1

    router.mark_down(first, reason="probe", detail="connection refused")
    other = router.select(criteria)
    assert other != first
    samples = scrape(registry)
    assert value(samples, "selectors_failovers_total", rule="a-hot", endpoint=other.id) == 1
    assert value(samples, "selectors_ejections_total", endpoint=first.id, reason="probe") == 1
    assert value(samples, "selectors_endpoint_up", endpoint=first.id) == 0
    assert value(samples, "selectors_readmissions_total", endpoint=first.id) == 0

    router.mark_up(first)
    assert router.select(criteria) == first
    samples = scrape(registry)
    assert value(samples, "selectors_readmissions_total", endpoint=first.id) == 1
    assert value(samples, "selectors_endpoint_up", endpoint=first.id) == 1
    # The decision after readmission is no failover.
    assert value(samples, "selectors_failovers_total", rule="a-hot", endpoint=other.id) == 1


def test_panic_decisions_are_counted() -> None:
    router = load_router(config_a())
    registry = CollectorRegistry()
    instrument(router, registry=registry)
    for endpoint_id in ("r1", "r2", "r3"):
        router.mark_down(endpoint_id)
    chosen = router.select(Criteria(execution_id="x", attributes={"x-tenant": "t0"}))
    samples = scrape(registry)
    assert value(samples, "selectors_panic_decisions_total", rule="a-hot") == 1
    # The up gauge reports health, not traffic: the panicking pool still used
    # an ejected replica, and the help text says that may happen.
    assert value(samples, "selectors_decisions_total", rule="a-hot", endpoint=chosen.id) == 1
    assert value(samples, "selectors_endpoint_up", endpoint=chosen.id) == 0
    help_line = next(
        line
        for line in generate_latest(registry).decode().splitlines()
        if line.startswith("# HELP selectors_endpoint_up ")
    )
    assert "ejected by health" in help_line
    assert "panics" in help_line


def test_reloads_ok_and_failed() -> None:
    router = load_router(config_a())
    registry = CollectorRegistry()
    instrument(router, registry=registry)
    samples = scrape(registry)
    # Both series exist from the start, so alerts on increase() work at once.
    assert ("selectors_config_reloads_total", frozenset({("result", "failed")})) in samples
    assert value(samples, "selectors_config_reloads_total", result="failed") == 0
    # No alert at start-up: the router was built from a configuration that loaded.
    assert value(samples, "selectors_config_last_reload_successful") == 1

    router.reload(config_b())
    samples = scrape(registry)
    assert value(samples, "selectors_config_reloads_total", result="ok") == 1
    assert value(samples, "selectors_config_last_reload_successful") == 1

    with pytest.raises(ConfigError):
        router.reload(with_changes(config_b(), routes=[]))
    samples = scrape(registry)
    assert value(samples, "selectors_config_reloads_total", result="failed") == 1
    assert value(samples, "selectors_config_last_reload_successful") == 0
    assert router.config.default.name == "b-default"


def test_endpoints_added_by_a_reload_are_listed_as_up() -> None:
    router = load_router(config_a())
    registry = CollectorRegistry()
    instrument(router, registry=registry)
    assert ("selectors_endpoint_up", frozenset({("endpoint", "r7")})) not in scrape(registry)
    bigger = config_b()
    bigger["endpoints"]["r7"] = "http://r7.internal"
    bigger["routes"][2]["target"] = "r7"
    router.mark_down("r2")
    router.reload(bigger)
    samples = scrape(registry)
    assert value(samples, "selectors_endpoint_up", endpoint="r7") == 1
    assert value(samples, "selectors_endpoint_up", endpoint="r2") == 0  # carried over


def test_replica_lag_gauge() -> None:
    router = load_router(config_a())
    registry = CollectorRegistry()
    instrument(router, registry=registry)
    router.events.emit(LagEvent("r2", 123_456, time.time()))
    assert value(scrape(registry), "selectors_replica_lag_bytes", endpoint="r2") == 123_456
    router.events.emit(LagEvent("r2", None, time.time()))
    assert is_nan(value(scrape(registry), "selectors_replica_lag_bytes", endpoint="r2"))


def test_one_observer_serves_several_routers_and_unsubscribes() -> None:
    registry = CollectorRegistry()
    observer = PrometheusObserver(registry)
    first, second = load_router(config_a()), load_router(config_b())
    stop_first = observer.observe(first)
    observer.observe(second)
    criteria = Criteria(application="zzz")
    first.select(criteria)
    second.select(criteria)
    samples = scrape(registry)
    assert value(samples, "selectors_decisions_total", rule="a-default", endpoint="r1") == 1
    assert value(samples, "selectors_decisions_total", rule="b-default", endpoint="r6") == 1
    stop_first()
    first.select(criteria)
    samples = scrape(registry)
    assert value(samples, "selectors_decisions_total", rule="a-default", endpoint="r1") == 1
    with pytest.raises(ValueError, match="Duplicated"):
        PrometheusObserver(registry)  # one observer per registry and namespace
    PrometheusObserver(registry, namespace="other")


def test_nothing_is_registered_at_import() -> None:
    code = (
        "import prometheus_client\n"
        "import selectors_lib.prometheus\n"
        "text = prometheus_client.generate_latest().decode()\n"
        "assert 'selectors' not in text, text\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "selectors_lib.prometheus")
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ImportError, match=r"pip install 'selectors-lib\[prometheus\]'"):
        importlib.import_module("selectors_lib.prometheus")


def test_decisions_noted_from_many_threads_are_all_counted_by_scrapes_between() -> None:
    import threading

    from selectors_lib import SelectEvent
    from selectors_lib.prometheus import FOLD_EVERY

    registry = CollectorRegistry()
    observer = PrometheusObserver(registry)
    per_thread = FOLD_EVERY + 1234  # each thread also folds on its own once
    stop = threading.Event()

    def note(name: str) -> None:
        for i in range(per_thread):
            observer(SelectEvent("r", name, i % 5 == 0, i % 7 == 0, 1e-6 * (i % 40)))

    def scrape_all_along() -> None:
        while not stop.is_set():
            generate_latest(registry)  # each scrape folds what was noted so far

    scraper = threading.Thread(target=scrape_all_along)
    threads = [threading.Thread(target=note, args=(f"e{k}",)) for k in range(4)]
    scraper.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    scraper.join()
    text = generate_latest(registry).decode()
    failovers = sum(1 for i in range(per_thread) if i % 5 == 0)
    panics = 4 * sum(1 for i in range(per_thread) if i % 7 == 0)
    for k in range(4):
        assert f'selectors_decisions_total{{endpoint="e{k}",rule="r"}} {per_thread}.0' in text
        assert f'selectors_failovers_total{{endpoint="e{k}",rule="r"}} {failovers}.0' in text
    assert f'selectors_panic_decisions_total{{rule="r"}} {panics}.0' in text
    assert f"selectors_select_duration_seconds_count {4 * per_thread}.0" in text


def test_folded_latencies_fall_in_the_buckets_one_observe_each_would() -> None:
    from selectors_lib import SelectEvent

    folded, direct = CollectorRegistry(), CollectorRegistry()
    observer = PrometheusObserver(folded)
    reference = PrometheusObserver(direct)
    # The bounds themselves, either side of them, zero and past the last bound.
    values = [0.0, *DEFAULT_BUCKETS, *(b * 1.0001 for b in DEFAULT_BUCKETS), 1e9]
    for v in values:
        observer(SelectEvent("r", "e", False, False, v))
        reference.duration.observe(v)
    lines = [
        line
        for line in generate_latest(folded).decode().splitlines()
        if line.startswith("selectors_select_duration_seconds_") and "_created" not in line
    ]
    expected = [
        line
        for line in generate_latest(direct).decode().splitlines()
        if line.startswith("selectors_select_duration_seconds_") and "_created" not in line
    ]
    assert lines == expected
