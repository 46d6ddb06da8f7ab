"""What the fleet looks like from its store: the report behind ``selectors-lib fleet``.

Read-only: it never takes the lease, publishes, or registers itself. Every
value read from the store is untrusted (anyone who can write to it can write
anything) and goes through the same checks followers apply; the CLI escapes
what it prints.
"""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

from selectors_lib._fingerprint import config_fingerprint
from selectors_lib._pool import EndpointHealth
from selectors_lib._router import RouterConfig

from ._lease import FleetStore, fence_of
from ._settings import HealthSettings
from ._shared_settings import SharedSettings
from ._snapshot import FleetSnapshot, SnapshotError, decode_snapshot

__all__ = ["fleet_report", "fleet_verdicts", "redact_url"]


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe to print and log)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _shared(config: RouterConfig) -> SharedSettings:
    health = config.health
    if not isinstance(health, HealthSettings) or health.shared is None:
        raise ValueError("the configuration has no 'health.shared' section")
    return health.shared


def fleet_verdicts(config: RouterConfig) -> FleetSnapshot | None:
    """The fleet's current snapshot, as a follower would apply it (None if none yet).

    Args:
        config: A configuration with a ``health.shared`` section.

    Raises:
        ValueError: No ``health.shared`` section.
        SnapshotError: The stored snapshot is invalid (a ``ValueError`` too).
        redis.RedisError: The store could not be read.
    """
    shared = _shared(config)
    store = FleetStore(shared)
    try:
        data = store.current()
    finally:
        store.close()
    return None if data is None else decode_snapshot(data, max_bytes=shared.max_snapshot_bytes)


def ejections(snapshot: FleetSnapshot | None) -> dict[str, EndpointHealth]:
    """The snapshot's ejected endpoints (what ``Router.set_health`` takes)."""
    return {} if snapshot is None else {e: h for e, h in snapshot.endpoints if not h.healthy}


def fleet_report(config: RouterConfig) -> dict[str, Any]:
    """Read the fleet's state from the store named by ``config``'s ``health.shared``.

    Args:
        config: A configuration with a ``health.shared`` section.

    Returns:
        A JSON-ready mapping: ``namespace``, ``store``, ``fingerprint`` (of
        ``config``), ``leader`` (instance, fence, ``ttl_ms``, or None),
        ``snapshot`` (generation, leader, fingerprint, ``age_s``, ``ejected``;
        or an ``error``; None when nothing was published yet), ``instances``
        (name, mode, generation, fingerprint, ``in_sync``), and ``drift``
        (True when any instance or the snapshot serves another fingerprint).

    Raises:
        ValueError: The configuration has no ``health.shared`` section.
        redis.RedisError: The store could not be read.
    """
    shared = _shared(config)
    mine = config_fingerprint(config)
    store = FleetStore(shared)
    try:
        holder, ttl = store.lease_holder()
        data = store.current()
        instances = list(store.instances())
    finally:
        store.close()
    now = time.time()
    leader = None
    if holder:
        name = holder.partition(":")[2]
        leader = {"instance": name, "fence": fence_of(holder), "ttl_ms": ttl}
    snapshot: dict[str, Any] | None = None
    if data is not None:
        try:
            snap = decode_snapshot(data, max_bytes=shared.max_snapshot_bytes)
        except SnapshotError as exc:
            snapshot = {"error": str(exc)}
        else:
            snapshot = {
                "generation": snap.generation,
                "leader": snap.leader,
                "fingerprint": snap.fingerprint,
                "age_s": round(max(0.0, now - snap.at), 3),
                "endpoints": len(snap.endpoints),
                "ejected": [
                    {"endpoint": eid, "reason": h.reason, "detail": h.detail}
                    for eid, h in snap.endpoints
                    if not h.healthy
                ],
            }
    rows = []
    for name, record in instances:
        fingerprint = record.get("fingerprint")
        rows.append(
            {
                "instance": name,
                "mode": str(record.get("mode", "?"))[:20],
                "generation": record.get("generation")
                if isinstance(record.get("generation"), int)
                else None,
                "fingerprint": str(fingerprint)[:80],
                "in_sync": fingerprint == mine,
            }
        )
    drift = any(not row["in_sync"] for row in rows) or (
        snapshot is not None and snapshot.get("fingerprint", mine) != mine
    )
    return {
        "namespace": shared.namespace,
        "store": redact_url(shared.url),
        "fingerprint": mine,
        "leader": leader,
        "snapshot": snapshot,
        "instances": rows,
        "drift": drift,
    }
