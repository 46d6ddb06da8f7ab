"""Regressions found by the review of the health plane (each test reproduced a defect)."""

from __future__ import annotations

import json

import pytest
from health_fleet_support import Instance, StoreNode, fleet_config, wait

from selectors_lib.health._lease import FleetStore
from selectors_lib.health._shared_settings import SharedSettings

pytestmark = pytest.mark.redis


def test_hostile_snapshot_reasons_do_not_grow_metric_label_sets(fleet_store: StoreNode) -> None:
    # Anyone who can write to the store can publish: a follower must not let
    # them mint one ejections_total series per invented reason.
    from prometheus_client import CollectorRegistry

    from selectors_lib.prometheus import instrument

    store = FleetStore(SharedSettings(fleet_store.url, "t"))
    store.client.set(store.lease_key, "999:rogue", px=60_000)
    follower = Instance(fleet_config(fleet_store.url), "gw-0")
    registry = CollectorRegistry()
    instrument(follower.router, registry=registry)
    follower.monitor.start()
    try:
        wait("a follower", lambda: follower.mode == "follower")
        for n in range(1, 61):
            down = n % 2 == 1
            health = {"healthy": not down, "reason": f"r{n}" if down else None}
            snapshot = {
                "v": 1, "generation": 10**13 + n, "fence": 999, "leader": "rogue",
                "fingerprint": "x", "at": 1.0,
                "endpoints": {"ro-1": {**health, "detail": "", "since": 1.0}},
            }  # fmt: skip
            store.client.publish(store.channel, json.dumps(snapshot))
            wait(f"generation {n}", lambda n=n: follower.generation == 10**13 + n)
    finally:
        follower.monitor.stop()
        store.close()
    reasons = {
        sample.labels["reason"]
        for metric in registry.collect()
        if metric.name == "selectors_ejections"
        for sample in metric.samples
    }
    assert "r1" in reasons  # ejections were counted
    assert len(reasons) <= 20, sorted(reasons)
