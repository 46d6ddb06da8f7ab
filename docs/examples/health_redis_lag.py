"""Route reads over two Redis-backed replicas and eject the one that lags.

Run it against a master and two replicas, for example::

    redis-server --port 6379 --save '' &
    redis-server --port 6380 --save '' --replicaof 127.0.0.1 6379 &
    redis-server --port 6381 --save '' --replicaof 127.0.0.1 6379 &
    python docs/examples/health_redis_lag.py redis://127.0.0.1:6379 \\
        redis://127.0.0.1:6380 redis://127.0.0.1:6381

It prints the lag of each replica and where a few users' reads go, round by
round; stop a replica (``kill -STOP``) while it runs to watch its users move to
the other one, and ``kill -CONT`` it to watch them come back.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from selectors_lib import Criteria, Event, HealthEvent, LagEvent, load_router
from selectors_lib.health import HealthMonitor


def build_config(master: str, replica_1: str, replica_2: str) -> dict[str, Any]:
    """The routing configuration, with its ``health`` section."""
    return {
        "endpoints": {"ro-1": replica_1, "ro-2": replica_2},
        "routes": [
            {
                "name": "reads",
                "default": True,
                "target": {
                    "endpoints": ["ro-1", "ro-2"],
                    "hash_on": ["authenticated_user"],
                    "panic_threshold": 0.5,
                },
            }
        ],
        "health": {
            "interval": 0.2,
            "timeout": 0.5,
            "eject_after": 3,
            "readmit_after": 2,
            "probes": [
                {
                    "type": "redis_lag",
                    "name": "cache",
                    "master": master,
                    "replicas": ["ro-1", "ro-2"],
                    "max_lag_bytes": 4 * 1024 * 1024,
                }
            ],
        },
    }


def main(master: str, replica_1: str, replica_2: str, seconds: float = 5.0) -> dict[str, Any]:
    """Monitor for ``seconds``, printing lag, ejections and routes; return the last status."""
    router = load_router(build_config(master, replica_1, replica_2))
    users = [Criteria(authenticated_user=name) for name in ("alice", "bob", "carol", "dave")]
    lag: dict[str, int | None] = {}

    def observe(event: Event) -> None:
        if isinstance(event, LagEvent):
            lag[event.endpoint_id] = event.lag_bytes
        elif isinstance(event, HealthEvent):
            change = "readmitted" if event.healthy else f"ejected ({event.reason})"
            print(f"{event.endpoint_id} {change}: {event.detail}")

    router.events.subscribe(observe)
    with HealthMonitor.from_router(router) as monitor:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.5)
            routes = {c.authenticated_user: router.select(c).id for c in users}
            print(f"lag {lag}  routes {routes}")
        status = monitor.status
    if status.master_unreachable:
        print("master unreachable:", status.probes[0].detail)
    return status.to_dict()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3])
