"""docs/health.md and docs/examples/health_*.py run as written."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from health_redis_nodes import RedisSet

from selectors_lib import load_config
from selectors_lib.health import HealthSettings, RedisLagProbeSettings

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
