"""Shared pieces of the fleet (shared health plane) tests.

:class:`StoreNode` is a real redis-server that can be killed and started again
on the same port (a store restart); :class:`Scripted` is a probe answering what
the test says (the documented :class:`~selectors_lib.health.Probe` protocol),
so a test decides what the leader sees and checks what every follower applies.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from health_redis_nodes import RedisNode, wait_for

from selectors_lib import Router, load_router
from selectors_lib.health import HealthMonitor, Observation, ProbeResult

redis = pytest.importorskip("redis")

IDS = ("ro-1", "ro-2", "ro-3")
GOOD = Observation(True, detail="ok")
BAD = Observation(False, "probe", "refused")
# Small enough to keep the tests short, large enough for a loaded 2-core machine.
INTERVAL = 0.1
LEASE = 1.0
STORE_TIMEOUT = 0.2


class StoreNode(RedisNode):
    """A redis-server that can be killed and restarted on the same port, empty."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        super().__init__(binary, directory)

    def restart(self) -> None:
        """Start again on the same port (after :meth:`kill`), with no data."""
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = self._start(self.binary, None)
        wait_for("the store to serve again", self.client.ping)

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
        try:
            super().stop()
        except subprocess.TimeoutExpired:  # pragma: no cover - the node kills it
            self.process.kill()


def fleet_config(store_url: str, namespace: str = "t", **shared: Any) -> dict[str, Any]:
    """Three replicas behind one hashed route, probed by a lag probe, shared through the store."""
    return {
        "endpoints": {eid: f"redis://10.0.0.{i}:6379" for i, eid in enumerate(IDS, 1)},
        "routes": [
            {
                "name": "reads",
                "default": True,
                "target": {
                    "endpoints": list(IDS),
                    "hash_on": ["authenticated_user"],
                    "panic_threshold": 0.3,
                },
            }
        ],
        "health": {
            "interval": INTERVAL,
            "timeout": 0.05,
            "eject_after": 2,
            "readmit_after": 2,
            "probes": [
                {
                    "type": "redis_lag",
                    "name": "scripted",
                    "master": "redis://m",
                    "replicas": list(IDS),
                }
            ],
            "shared": {
                "url": store_url,
                "namespace": namespace,
                "lease": LEASE,
                "timeout": STORE_TIMEOUT,
                **shared,
            },
        },
    }


class Scripted:
    """A probe that answers what the test sets in :attr:`answer`."""

    name = "scripted"
    endpoint_ids = IDS
    measures_lag = False

    def __init__(self) -> None:
        self.answer = dict.fromkeys(IDS, GOOD)
        self.checks = 0

    def check(self, timeout: float) -> ProbeResult:
        self.checks += 1
        return ProbeResult(tuple(self.answer.items()))

    async def acheck(self, timeout: float) -> ProbeResult:
        return self.check(timeout)

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


class Instance:
    """One fleet member in this process: a router, its scripted probe, its monitor."""

    def __init__(self, config: dict[str, Any], name: str) -> None:
        self.router: Router = load_router(config)
        self.probe = Scripted()
        self.monitor = HealthMonitor.from_router(self.router, probes=[self.probe])
        assert self.monitor._plane is not None
        self.monitor._plane.instance = name
        self.name = name

    @property
    def mode(self) -> str:
        fleet = self.monitor.fleet
        assert fleet is not None
        return fleet.mode

    @property
    def generation(self) -> int:
        fleet = self.monitor.fleet
        assert fleet is not None
        return fleet.generation

    def down(self) -> set[str]:
        return {eid for eid, h in self.router.health.items() if not h.healthy}


def wait(what: str, condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for: {what}")
        time.sleep(0.01)
