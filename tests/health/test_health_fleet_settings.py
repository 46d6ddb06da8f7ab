"""The ``health.shared`` section, the snapshot codec and the config fingerprint (no store needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from health_fleet_support import fleet_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selectors_lib import ConfigError, config_fingerprint, config_to_dict, load_config, load_router
from selectors_lib._pool import EndpointHealth
from selectors_lib.health import (
    FleetSnapshot,
    SharedSettings,
    SnapshotError,
    decode_snapshot,
    encode_snapshot,
)

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_the_section_loads_with_defaults_and_dumps_back() -> None:
    raw = fleet_config("redis://store:6379/2")
    del raw["health"]["shared"]["lease"], raw["health"]["shared"]["timeout"]
    raw["health"]["interval"] = 1.0
    config = load_config(raw)
    assert config.health.shared == SharedSettings("redis://store:6379/2", "t")
    dumped = config_to_dict(config)
    assert dumped["health"]["shared"] == {
        "url": "redis://store:6379/2",
        "namespace": "t",
        "lease": 3.0,
        "timeout": 0.25,
        "max_snapshot_bytes": 1 << 20,
    }
    assert load_config(dumped).health == config.health


def test_every_problem_is_reported_at_once_with_its_path() -> None:
    raw = fleet_config("http://not-redis")
    raw["health"]["shared"].update(
        namespace="a b", lease=0.1, timeout=-1, max_snapshot_bytes=10, extra=1
    )
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    paths = {issue.path for issue in info.value.issues}
    assert paths == {
        "health.shared.extra",
        "health.shared.url",
        "health.shared.namespace",
        "health.shared.lease",
        "health.shared.timeout",
        "health.shared.max_snapshot_bytes",
    }
    lease = next(i for i in info.value.issues if i.path == "health.shared.lease")
    assert "twice health.interval" in lease.message


def test_a_store_timeout_above_a_quarter_of_the_lease_is_refused() -> None:
    raw = fleet_config("redis://store", lease=1.0, timeout=0.5)
    with pytest.raises(ConfigError, match=r"health\.shared\.timeout: must be at most a quarter"):
        load_config(raw)


def test_a_missing_url_and_a_non_mapping_are_errors() -> None:
    raw = fleet_config("redis://store")
    del raw["health"]["shared"]["url"]
    with pytest.raises(ConfigError, match=r"health\.shared: missing key 'url'"):
        load_config(raw)
    raw["health"]["shared"] = "redis://store"
    with pytest.raises(ConfigError, match=r"health\.shared: expected a mapping"):
        load_config(raw)


# -- fingerprint ------------------------------------------------------------------------


def test_the_fingerprint_names_the_effective_configuration() -> None:
    raw = fleet_config("redis://store")
    config = load_config(raw)
    fingerprint = config_fingerprint(config)
    assert fingerprint.startswith("sha256:")
    assert len(fingerprint) == len("sha256:") + 16
    assert load_router(raw).fingerprint == fingerprint
    # Loaded again from its canonical dump: the same configuration, the same name.
    assert config_fingerprint(load_config(config_to_dict(config))) == fingerprint
    raw["routes"][0]["target"]["panic_threshold"] = 0.9
    assert config_fingerprint(load_config(raw)) != fingerprint


def test_the_fingerprint_is_the_same_in_every_process(tmp_path: Path) -> None:
    path = tmp_path / "routes.json"
    path.write_text(json.dumps(fleet_config("redis://store")))
    code = (
        "import sys; from selectors_lib import load_router; "
        "print(load_router(sys.argv[1]).fingerprint)"
    )
    seen = set()
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONPATH=SRC, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
            timeout=60,
        )
        seen.add(out.stdout.strip())
    assert seen == {load_router(str(path)).fingerprint}


# -- snapshot codec ---------------------------------------------------------------------


SNAPSHOT = FleetSnapshot(
    generation=1_767_225_600_250,
    fence=7,
    leader="gw-2:4120",
    fingerprint="sha256:1f0c2a9e4b7d6c3a",
    at=1_767_225_600.25,
    endpoints=(
        ("ro-1", EndpointHealth(True, None, "10 bytes behind", 1_767_225_590.0)),
        ("ro-2", EndpointHealth(False, "lag", "9000000 bytes behind", 1_767_225_599.5)),
    ),
)


def test_a_snapshot_round_trips_byte_for_byte() -> None:
    data = encode_snapshot(SNAPSHOT)
    assert decode_snapshot(data, max_bytes=1 << 20) == SNAPSHOT
    assert encode_snapshot(decode_snapshot(data, max_bytes=1 << 20)) == data
    assert json.loads(data)["v"] == 1


def mutate(**changes: Any) -> bytes:
    raw = json.loads(encode_snapshot(SNAPSHOT))
    raw.update(changes)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"x" * 2000, "exceeds 1024"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 1000, "not JSON"),
        (b"[]", "expected a JSON object"),
        (mutate(v=2), "unsupported snapshot version 2"),
        (mutate(generation=-1), "generation"),
        (mutate(generation=True), "generation"),
        (mutate(generation=2**64), "generation"),
        (mutate(leader=""), "leader"),
        (mutate(at=float("inf")), "at"),
        (mutate(endpoints=[]), "endpoints: expected an object"),
        (mutate(endpoints={"ro-1": {"healthy": 1}}), "endpoints['ro-1']"),
        (
            mutate(endpoints={"ro-1": {"healthy": False, "reason": "", "detail": "", "since": 0}}),
            "reason",
        ),
        (mutate(endpoints={f"e{i}": {} for i in range(10_001)}), "more than 10000"),
    ],
)
def test_hostile_snapshots_are_refused_whole(data: bytes, message: str) -> None:
    with pytest.raises(SnapshotError, match=message.replace("[", r"\[")):
        decode_snapshot(data, max_bytes=1024 if len(data) == 2000 else 1 << 20)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


# A loaded (shared) machine must not fail it for drawing its inputs slowly.
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["v", "generation", "fence", "leader", "fingerprint", "at", "endpoints"]),
        JSONISH,
    )
)
def test_any_json_decodes_or_is_refused_never_a_crash(raw: dict[str, Any]) -> None:
    data = json.dumps({"v": 1, **raw}).encode()
    try:
        snapshot = decode_snapshot(data, max_bytes=1 << 20)
    except SnapshotError:
        return
    assert decode_snapshot(encode_snapshot(snapshot), max_bytes=1 << 20) == snapshot


def test_the_pages_configuration_example_loads() -> None:
    yaml = pytest.importorskip("yaml")
    page = (Path(__file__).resolve().parents[2] / "docs" / "fleet.md").read_text("utf-8")
    block = page[page.index("```yaml\n") + len("```yaml\n") :]
    config = load_config(yaml.safe_load(block[: block.index("```")]))
    assert config.health.shared == SharedSettings(
        "redis://health-store.internal:6379/0", "checkout-gateways", 3.0, 0.25, 1 << 20
    )
