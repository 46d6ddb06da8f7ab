"""docs/health.md and docs/examples/health_*.py run as written."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
from health_redis_nodes import RedisSet, wait_for

from selectors_lib import Criteria, load_config, load_router
from selectors_lib.health import HealthMonitor, HealthSettings, RedisLagProbeSettings

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = (DOCS / "health.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", PAGE, flags=re.DOTALL | re.MULTILINE)


def test_python_examples_run_each_on_its_own() -> None:
    found = blocks("python")
    assert len(found) >= 3
    for code in found:
        exec(compile(code, str(DOCS / "health.md"), "exec"), {"__name__": "health_docs"})


def test_yaml_example_is_a_valid_configuration() -> None:
    yaml = pytest.importorskip("yaml")
    (text,) = blocks("yaml")
    config = load_config(yaml.safe_load(text))
    health = config.health
    assert isinstance(health, HealthSettings)
    assert [p.name for p in health.probes] == ["cache", "clouddriver-cache", "clouddriver"]
    cache = health.probes[0]
    assert isinstance(cache, RedisLagProbeSettings)
    assert cache.max_lag_bytes == 4 * 1024 * 1024


@pytest.mark.redis
def test_redis_example_program(redis_set: RedisSet, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location(
        "health_redis_lag", DOCS / "examples" / "health_redis_lag.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    replicas = redis_set.replicas
    status = module.main(
        redis_set.master.url, replicas["ro-1"].url, replicas["ro-2"].url, seconds=1.0
    )
    assert status["rounds"] >= 2
    assert status["master_unreachable"] == []
    assert all(state["healthy"] for state in status["endpoints"].values())
    assert set(status["probes"][0]["lag"]) == {"ro-1", "ro-2"}
    out = capsys.readouterr().out
    assert "routes {'alice': 'ro-" in out


def load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, DOCS / "examples" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.redis
def test_flip_example_moves_reads_to_a_fresh_stack_only_when_in_sync(redis_set: RedisSet) -> None:
    example = load_example("health_flip")
    master, replicas = redis_set.master.url, redis_set.replicas
    max_lag = 256 * 1024
    old = example.stack_config(master, {"ro-1": replicas["ro-1"].url}, max_lag)
    router = load_router(old)
    monitor = HealthMonitor.from_router(router).start()
    try:
        redis_set.proxy["ro-1"].stall()
        redis_set.write(1024 * 1024)
        wait_for("the old stack ejected for lag", lambda: not router.health["ro-1"].healthy)
        users = [Criteria(authenticated_user=f"u{i}") for i in range(20)]
        assert {router.select(c).id for c in users} == {"ro-1"}, "a pool of one panics, reads flow"

        serving = router.config
        with pytest.raises(example.FlipRefused, match="bytes behind"):
            example.flip(router, monitor, old)  # flipping to a lagging stack is refused
        assert router.config is serving

        # The fresh stack must have caught up with the writes before it is
        # offered; flip() checks its lag once, right away.
        master_info = redis_set.master.info

        def ro2_in_sync() -> bool:
            info = replicas["ro-2"].info()
            return info.get("slave_repl_offset") == master_info()["master_repl_offset"]

        wait_for("ro-2 to catch up with the master", ro2_in_sync)
        fresh = example.stack_config(master, {"ro-2": replicas["ro-2"].url}, max_lag)
        monitor = example.flip(router, monitor, fresh)
        assert {router.select(c).id for c in users} == {"ro-2"}
        wait_for("the new monitor probing the new stack", lambda: monitor.status.rounds >= 2)
        assert monitor.status.endpoint("ro-2").healthy
        assert router.health["ro-2"].healthy
    finally:
        monitor.stop()
        redis_set.proxy["ro-1"].resume()
