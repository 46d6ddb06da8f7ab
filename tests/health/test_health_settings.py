"""The ``health:`` section: strict validation, every issue at once, canonical form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selectors_lib import ConfigError, config_to_dict, load_config
from selectors_lib.health import (
    DEFAULT_MAX_LAG_BYTES,
    HealthSettings,
    HttpProbeSettings,
    RedisLagProbeSettings,
    parse_health_settings,
)

ENDPOINTS = {
    "ro-1": "redis://10.0.0.1:6379",
    "ro-2": "redis://10.0.0.2:6379",
    "api-1": "http://10.0.1.1:7002",
    "api-2": "https://api-2.example:8443/base/",
}


def config(health: object) -> dict[str, Any]:
    return {
        "version": 1,
        "endpoints": ENDPOINTS,
        "routes": [
            {"name": "api", "match": {"origin": "api"}, "target": "api-1"},
            {"name": "more", "match": {"origin": "x"}, "target": "api-2"},
            {
                "name": "reads",
                "default": True,
                "target": {"endpoints": ["ro-1", "ro-2"], "hash_on": ["authenticated_user"]},
            },
        ],
        "health": health,
    }


def issues(health: object) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_config(config(health))
    return {issue.path: issue.message for issue in info.value.issues}


def test_defaults_and_both_probe_kinds() -> None:
    loaded = load_config(
        config(
            {
                "probes": [
                    {
                        "type": "redis_lag",
                        "master": "redis://10.0.0.9:6379",
                        "replicas": ["ro-1", "ro-2"],
                    },
                    {"type": "http", "endpoints": ["api-1", "api-2"], "expect_status": 204},
                ]
            }
        )
    )
    health = loaded.health
    assert isinstance(health, HealthSettings)
    assert (health.interval, health.timeout, health.eject_after, health.readmit_after) == (
        1.0,
        0.5,
        3,
        2,
    )
    redis_probe, http_probe = health.probes
    assert redis_probe == RedisLagProbeSettings(
        "redis_lag-0",
        "redis://10.0.0.9:6379",
        (("ro-1", "redis://10.0.0.1:6379"), ("ro-2", "redis://10.0.0.2:6379")),
        DEFAULT_MAX_LAG_BYTES,
    )
    assert DEFAULT_MAX_LAG_BYTES == 4 * 1024 * 1024
    assert isinstance(http_probe, HttpProbeSettings)
    assert http_probe.name == "http-1"
    assert http_probe.expect_status == (204,)
    assert [http_probe.url(base) for _, base in http_probe.endpoints] == [
        "http://10.0.1.1:7002/health",
        "https://api-2.example:8443/base/health",
    ]


def test_replicas_as_a_mapping_to_redis_urls() -> None:
    # Endpoints routed to are HTTP services; each reads from its own Redis replica.
    health = load_config(
        config(
            {
                "probes": [
                    {
                        "type": "redis_lag",
                        "name": "clouddriver-cache",
                        "master": "rediss://master.example:6380/0",
                        "replicas": {"api-1": "redis://r1:6379", "api-2": "unix:///run/r2.sock"},
                        "max_lag_bytes": 0,
                    }
                ]
            }
        )
    ).health
    probe = health.probes[0]
    assert probe.replicas == (("api-1", "redis://r1:6379"), ("api-2", "unix:///run/r2.sock"))
    assert probe.max_lag_bytes == 0


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    found = issues(
        {
            "interval": 0,
            "timeout": "fast",
            "eject_after": 0,
            "readmit_after": True,
            "jitter": 1,
            "probes": [
                {
                    "type": "redis_lag",
                    "master": "http://m:1",
                    "replicas": ["ro-1", "nope"],
                    "max_lag_bytes": -1,
                },
                {
                    "type": "redis_lag",
                    "master": "redis://m:1",
                    "replicas": ["api-1", "ro-1", "ro-1"],
                },
                {
                    "type": "http",
                    "endpoints": ["ro-1", "api-1"],
                    "path": "health",
                    "expect_status": [200, 99],
                    "x": 1,
                },
                {"type": "tcp"},
                {"endpoints": ["api-1"]},
                {"type": "http", "name": "a b", "endpoints": []},
                "nope",
            ],
        }
    )
    assert found == {
        "health.interval": "must be more than 0 and at most 3600, got 0",
        "health.timeout": "expected a number of seconds, got a string",
        "health.eject_after": "must be between 1 and 1000, got 0",
        "health.readmit_after": "expected an integer, got a boolean",
        "health.jitter": "unknown key; expected one of interval, timeout, eject_after, readmit_after, probes, shared",
        "health.probes[0].master": "invalid URL 'http://m:1': expected a redis:// or rediss:// or unix:// URL",
        "health.probes[0].replicas[1]": "unknown endpoint 'nope'; known: api-1, api-2, ro-1, ro-2",
        "health.probes[0].max_lag_bytes": "must be between 0 and 1125899906842624, got -1",
        "health.probes[1].replicas[0]": (
            "endpoint 'api-1' has URL 'http://10.0.1.1:7002', not a Redis URL; give replicas as a "
            "mapping of endpoint id to its Redis URL"
        ),
        "health.probes[1].replicas[2]": "endpoint 'ro-1' is already listed (replicas[1])",
        "health.probes[2].x": "unknown key; expected one of type, name, endpoints, path, expect_status",
        "health.probes[2].endpoints[0]": (
            "endpoint 'ro-1' has URL 'redis://10.0.0.1:6379': expected a http:// or https:// URL"
        ),
        "health.probes[2].path": "expected a path starting with '/' (no spaces), got 'health'",
        "health.probes[2].expect_status[1]": "must be between 100 and 599, got 99",
        "health.probes[3].type": "unknown type 'tcp'; expected one of redis_lag, http",
        "health.probes[4]": "missing key 'type'; expected one of redis_lag, http",
        "health.probes[5].name": "expected 1 to 100 letters, digits, '_', '.' or '-', got 'a b'",
        "health.probes[5].endpoints": "must not be empty",
        "health.probes[6]": "expected a mapping, got a string",
    }


@pytest.mark.parametrize(
    ("health", "path", "message"),
    [
        ("yes", "health", "expected a mapping, got a string"),
        ({}, "health", "missing key 'probes': list what to probe"),
        ({"probes": []}, "health.probes", "must not be empty"),
        ({"probes": {}}, "health.probes", "expected a list, got a mapping"),
        ({"interval": float("nan"), "probes": [{"type": "http", "endpoints": ["api-1"]}]}, "health.interval", "must be more than 0 and at most 3600, got nan"),
        ({"timeout": 1e309, "probes": [{"type": "http", "endpoints": ["api-1"]}]}, "health.timeout", "must be more than 0 and at most 3600, got inf"),
        ({"probes": [{"type": "redis_lag", "replicas": ["ro-1"]}]}, "health.probes[0]", "missing key 'master' (the master's redis:// URL)"),
        ({"probes": [{"type": "redis_lag", "master": "redis://m"}]}, "health.probes[0]", "missing key 'replicas' (endpoint ids, or a mapping id -> redis URL)"),
        ({"probes": [{"type": "redis_lag", "master": "redis://m", "replicas": "ro-1"}]}, "health.probes[0].replicas", "expected a list of endpoint ids or a mapping, got a string"),
        ({"probes": [{"type": "redis_lag", "master": "redis://m", "replicas": {"ro-1": "redis://:99999"}}]}, "health.probes[0].replicas.ro-1", "invalid URL 'redis://:99999': Port out of range 0-65535"),
        ({"probes": [{"type": "redis_lag", "master": "redis://m", "replicas": {"x y": "redis://h"}}]}, "health.probes[0].replicas", "unknown endpoint 'x y'; known: api-1, api-2, ro-1, ro-2"),
        ({"probes": [{"type": "redis_lag", "master": "redis:// m", "replicas": ["ro-1"]}]}, "health.probes[0].master", "invalid URL 'redis:// m': contains white space"),
        ({"probes": [{"type": "http", "endpoints": ["api-1"], "expect_status": []}]}, "health.probes[0].expect_status", "expected a status code or a non-empty list of them, got a list"),
        ({"probes": [{"type": "http", "endpoints": [1]}]}, "health.probes[0].endpoints[0]", "expected an endpoint id, got an integer"),
        ({"probes": [{"type": "http", "name": "a", "endpoints": ["api-1"]}, {"type": "http", "name": "a", "endpoints": ["api-2"]}]}, "health.probes[1].name", "duplicate probe name 'a' (also probes[0])"),
    ],
)  # fmt: skip
def test_single_problems(health: object, path: str, message: str) -> None:
    assert issues(health) == {path: message}


def test_probe_errors_do_not_hide_route_errors() -> None:
    raw = config({"probes": [{"type": "http", "endpoints": ["api-9"]}]})
    raw["routes"][0]["priority"] = "high"
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    paths = [issue.path for issue in info.value.issues]
    assert "routes[0].priority" in paths
    assert "health.probes[0].endpoints[0]" in paths


def test_parse_contract_returns_none_and_issues_on_error() -> None:
    settings_, found = parse_health_settings({"probes": [{"type": "x"}]}, "health", {})
    assert settings_ is None
    assert [i.path for i in found] == ["health.probes[0].type"]


FULL = {
    "interval": 0.25,
    "timeout": 0.1,
    "eject_after": 5,
    "readmit_after": 4,
    "probes": [
        {
            "type": "redis_lag",
            "name": "cache",
            "master": "redis://m:6379",
            "replicas": {"ro-1": "redis://10.0.0.1:6379", "ro-2": "redis://10.0.0.2:6379"},
            "max_lag_bytes": 1048576,
        },
        {
            "type": "http",
            "name": "api",
            "endpoints": ["api-1", "api-2"],
            "path": "/status",
            "expect_status": [200, 204],
        },
    ],
}


def test_canonical_form_round_trips(tmp_path: Path) -> None:
    loaded = load_config(config(FULL))
    dumped = config_to_dict(loaded)
    assert dumped["health"] == FULL
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(dumped))
    again = load_config(path)
    assert again.health == loaded.health
    assert config_to_dict(again) == dumped


def test_yaml_file() -> None:
    pytest.importorskip("yaml")
    text = """
endpoints:
  ro-1: redis://10.0.0.1:6379
  ro-2: redis://10.0.0.2:6379
routes:
  - name: reads
    default: true
    target: {endpoints: [ro-1, ro-2], hash_on: [authenticated_user]}
health:
  interval: 1
  probes:
    - {type: redis_lag, master: "redis://10.0.0.9:6379", replicas: [ro-1, ro-2], max_lag_bytes: 4194304}
"""
    import yaml

    health = load_config(yaml.safe_load(text)).health
    assert health.interval == 1.0
    assert health.probes[0].endpoint_ids == ("ro-1", "ro-2")


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(
    [
        "type",
        "name",
        "master",
        "replicas",
        "endpoints",
        "path",
        "expect_status",
        "max_lag_bytes",
        "x",
    ]
)
PROBE = st.dictionaries(
    KEYS,
    JSONISH
    | st.sampled_from(["redis_lag", "http", "ro-1", "api-1", ["ro-1"], ["api-1"], "redis://h"]),
    max_size=6,
)


@settings(max_examples=200)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "interval": JSONISH,
            "timeout": JSONISH,
            "eject_after": JSONISH,
            "probes": st.lists(PROBE, max_size=3) | JSONISH,
        },
    )
)
def test_untrusted_input_gives_settings_or_issues_never_a_crash(raw: dict[str, Any]) -> None:
    endpoints = load_config(config(FULL))  # any valid config gives the endpoint catalogue
    catalogue = {e.id: e for e in endpoints.endpoints}
    result, found = parse_health_settings(raw, "health", catalogue)
    assert (result is None) == bool(found)
    for issue in found:
        assert issue.path.startswith("health")
    if result is not None:
        # Whatever validated dumps to a form that validates to the same settings.
        again, more = parse_health_settings(result.to_dict(), "health", catalogue)
        assert more == []
        assert again == result
