"""One gateway process of the fleet scenario (started by ``bench_fleet.py``, not run alone).

A plain embedded router plus its health monitor, built from a configuration
file, routing the same synthetic keys as its peers. Whenever its routing
changes (a health change swaps a new snapshot in) it appends one JSON line to
its record file: the time (``time.monotonic``, shared by every process on a
machine), its health generation and mode, and the endpoint of every key. Mode
changes are recorded too. Each line is flushed at once, so a process that is
killed leaves a complete record up to its death.

Usage: python bench/fleet_gateway.py CONFIG RECORD_FILE NAME N_KEYS
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

from selectors_lib import Criteria, EndpointHealth, Router, load_router
from selectors_lib.health import HealthMonitor


def main() -> int:
    config_path, record_path, name, n_keys = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    os.environ["SELECTORS_LIB_INSTANCE"] = name
    router = load_router(config_path)
    ids = [e.id for e in router.endpoints]
    index = {eid: str(i) for i, eid in enumerate(ids)}
    keys = [Criteria(authenticated_user=f"user-{i}") for i in range(n_keys)]
    out = open(record_path, "a", encoding="ascii")  # noqa: SIM115 - closed at exit
    lock = threading.Lock()

    def write(record: dict[str, object]) -> None:
        with lock:
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
            out.flush()

    # Polled, not subscribed to: an observer on router.events would put every
    # select() on the observed path (no decision cache), slowing the recording.
    monitor = HealthMonitor.from_router(router)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    monitor.start()
    print("ready", flush=True)
    shadow = Router(router.config)
    memo: dict[frozenset[str], str] = {}
    seen = -1
    fleet_seen = None
    while not stop.is_set():
        fleet = monitor.fleet
        if fleet is not None and (fleet.mode, fleet.generation) != fleet_seen:
            fleet_seen = (fleet.mode, fleet.generation)
            write({"kind": "fleet", "t": time.monotonic(), "mode": fleet.mode,
                   "generation": fleet.generation, "leader": fleet.leader})  # fmt: skip
        generation = router.generation
        if generation != seen:
            at = time.monotonic()
            health = router.health  # one snapshot's health, read at once
            seen = generation
            down = frozenset(eid for eid, h in health.items() if not h.healthy)
            routes = memo.get(down)
            if routes is None:
                # Routing depends on the configuration and the set of ejected
                # endpoints only: compute it on a private copy, so the vector is
                # exactly the one of time ``at`` however long computing takes.
                shadow.set_health({eid: EndpointHealth(eid not in down, "probe") for eid in ids})
                routes = memo[down] = "".join(index[shadow.select(key).id] for key in keys)
            write({"kind": "routes", "t": at, "router_generation": generation,
                   "generation": fleet.generation if fleet else 0,
                   "mode": fleet.mode if fleet else "local", "routes": routes})  # fmt: skip
        stop.wait(0.002)
    monitor.stop()
    out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
