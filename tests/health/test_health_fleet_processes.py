"""The shared plane across real processes: gateways on a real master and replicas.

Three gateway processes (a router and its monitor each, configured from one
file with a real ``redis_lag`` probe) share a real store. A replica stopped
with SIGSTOP is ejected by all of them at the same generation; SIGKILL on the
leader hands leadership to a survivor; ``selectors-lib fleet`` shows it all,
and tells drift apart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from health_fleet_support import StoreNode, wait
from health_redis_nodes import RedisSet

pytestmark = pytest.mark.redis

SRC = str(Path(__file__).resolve().parents[2] / "src")

GATEWAY = """
import json, sys, time
from selectors_lib import load_router
from selectors_lib.health import HealthMonitor

router = load_router(sys.argv[1])
seen = None
with HealthMonitor.from_router(router) as monitor:
    while True:
        fleet = monitor.fleet
        down = sorted(e for e, h in router.health.items() if not h.healthy)
        state = (fleet.mode, fleet.generation, down)
        if state != seen:
            seen = state
            print(json.dumps({"mode": fleet.mode, "generation": fleet.generation,
                              "leader": fleet.leader, "down": down}), flush=True)
        time.sleep(0.01)
"""


class Gateway:
    """A gateway process and the latest state it printed."""

    def __init__(self, name: str, config: Path, script: Path) -> None:
        env = dict(os.environ, PYTHONPATH=SRC, SELECTORS_LIB_INSTANCE=name)
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, str(script), str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self.state: dict[str, Any] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.state = json.loads(line)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        self._reader.join(5)
        assert self.process.stdout is not None
        self.process.stdout.close()


def write_config(path: Path, redis_set: RedisSet, store_url: str, *, weight: int = 1) -> None:
    replicas = {eid: node.url for eid, node in redis_set.replicas.items()}
    config = {
        "endpoints": replicas,
        "routes": [
            {
                "name": "reads",
                "default": True,
                "target": {
                    "endpoints": [{"id": eid, "weight": weight} for eid in replicas],
                    "hash_on": ["authenticated_user"],
                },
            }
        ],
        "health": {
            "interval": 0.1,
            "timeout": 0.1,
            "eject_after": 2,
            "readmit_after": 2,
            "probes": [{"type": "redis_lag", "master": redis_set.master.url, "replicas": replicas}],
            "shared": {"url": store_url, "namespace": "procs", "lease": 1.0, "timeout": 0.2},
        },
    }
    path.write_text(json.dumps(config))


@pytest.fixture
def gateways(
    redis_set: RedisSet, fleet_store: StoreNode, tmp_path: Path
) -> Iterator[tuple[list[Gateway], Path]]:
    config, script = tmp_path / "routes.json", tmp_path / "gateway.py"
    write_config(config, redis_set, fleet_store.url)
    script.write_text(GATEWAY)
    members = [Gateway(f"gw-{i}", config, script) for i in range(3)]
    try:
        yield members, config
    finally:
        for member in members:
            member.stop()


def fleet_cli(config: Path) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "selectors_lib", "fleet", str(config), "--json"],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=SRC),
        timeout=60,
        check=False,
    )
    return result.returncode, json.loads(result.stdout)


def test_processes_share_one_view_and_survive_their_leader(
    gateways: tuple[list[Gateway], Path],
    redis_set: RedisSet,
    fleet_store: StoreNode,
    tmp_path: Path,
) -> None:
    members, config = gateways

    def modes(group: list[Gateway]) -> list[str]:
        return sorted(str(m.state.get("mode")) for m in group)

    wait("one leader, two followers", lambda: modes(members) == ["follower", "follower", "leader"])
    code, report = fleet_cli(config)
    assert code == 0
    assert report["drift"] is False
    assert sorted(i["instance"] for i in report["instances"]) == ["gw-0", "gw-1", "gw-2"]
    leader = next(m for m in members if m.state["mode"] == "leader")
    assert report["leader"]["instance"] == leader.name
    # Another file (one weight differs): another fingerprint, reported as drift.
    write_config(other := tmp_path / "other.json", redis_set, fleet_store.url, weight=2)
    code, drifted = fleet_cli(other)
    assert code == 1
    assert drifted["drift"] is True
    assert not any(i["in_sync"] for i in drifted["instances"])

    # Stop a replica: every process ejects it, at the same generation.
    redis_set.replicas["ro-1"].pause()
    try:
        wait("ro-1 ejected everywhere", lambda: all(m.state["down"] == ["ro-1"] for m in members))
        wait("one generation", lambda: len({m.state["generation"] for m in members}) == 1)
    finally:
        redis_set.replicas["ro-1"].resume()
    wait("ro-1 readmitted everywhere", lambda: all(m.state["down"] == [] for m in members))

    # Kill the leader outright: a survivor takes the lease when it runs out.
    fence = fleet_cli(config)[1]["leader"]["fence"]
    leader.process.send_signal(signal.SIGKILL)
    survivors = [m for m in members if m is not leader]
    wait("a survivor leads", lambda: modes(survivors) == ["follower", "leader"])
    redis_set.replicas["ro-2"].pause()
    try:
        wait(
            "ro-2 ejected by the survivors",
            lambda: all(m.state["down"] == ["ro-2"] for m in survivors),
        )
    finally:
        redis_set.replicas["ro-2"].resume()
    code, report = fleet_cli(config)
    assert report["leader"]["instance"] in {m.name for m in survivors}
    assert report["leader"]["fence"] > fence
