"""The verdict snapshot a fleet's leader publishes: its wire form and its checks.

A snapshot is the *whole* verdict set of one moment (every endpoint the leader
observes, healthy or not), so a follower that missed any number of messages is
whole again after one. It is JSON, keys sorted, ASCII only::

    {"at": 1767225600.25, "endpoints": {"ro-1": {"detail": "", "healthy": true,
     "reason": null, "since": 1767225590.0}}, "fence": 7,
     "fingerprint": "sha256:1f0c...", "generation": 1767225600250,
     "leader": "gw-2:4120", "v": 1}

Followers treat what they read from the store as untrusted input: anyone who
can write to the store can publish. :func:`decode_snapshot` bounds the size
before parsing, checks every field's type and range, and rejects the snapshot
as a whole (a :class:`SnapshotError`) rather than applying part of it.
Endpoints a follower does not serve are dropped by the caller, not here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import attrs

from selectors_lib._errors import SelectorsError
from selectors_lib._pool import EndpointHealth

__all__ = [
    "MAX_SNAPSHOT_ENDPOINTS",
    "SNAPSHOT_VERSION",
    "FleetSnapshot",
    "SnapshotError",
    "decode_snapshot",
    "encode_snapshot",
]

SNAPSHOT_VERSION = 1
#: More endpoints than any configuration holds: a bound on a hostile snapshot's work.
MAX_SNAPSHOT_ENDPOINTS = 10_000
_MAX_ID = 200
_MAX_DETAIL = 500
_MAX_REASON = 50
#: Generations are unix milliseconds or more (see FleetSnapshot): bounded like an int64.
_MAX_GENERATION = 2**63 - 1
_TOP_KEYS = frozenset({"v", "generation", "fence", "leader", "fingerprint", "at", "endpoints"})
_ENDPOINT_KEYS = frozenset({"healthy", "reason", "detail", "since"})


class SnapshotError(SelectorsError, ValueError):
    """A snapshot read from the store is malformed, too large, or of another version."""


@attrs.frozen
class FleetSnapshot:
    """One published verdict set.

    Args:
        generation: Orders snapshots across leaders and store restarts: each is
            larger than every one before it (at least the previous one plus 1,
            and at least the publisher's unix time in milliseconds).
        fence: The lease's fencing number of the leader that published it.
        leader: The publishing instance's name.
        fingerprint: The publisher's configuration fingerprint.
        at: Unix time of publication.
        endpoints: ``(endpoint id, health)`` for every observed endpoint, sorted.
    """

    generation: int
    fence: int
    leader: str
    fingerprint: str
    at: float
    endpoints: tuple[tuple[str, EndpointHealth], ...] = ()

    @property
    def verdicts(self) -> dict[str, EndpointHealth]:
        """The endpoints' health by id."""
        return dict(self.endpoints)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready wire form."""
        return {
            "v": SNAPSHOT_VERSION,
            "generation": self.generation,
            "fence": self.fence,
            "leader": self.leader,
            "fingerprint": self.fingerprint,
            "at": self.at,
            "endpoints": {
                endpoint_id: {
                    "healthy": health.healthy,
                    "reason": health.reason,
                    "detail": health.detail[:_MAX_DETAIL],
                    "since": health.since,
                }
                for endpoint_id, health in self.endpoints
            },
        }


def encode_snapshot(snapshot: FleetSnapshot) -> bytes:
    """The snapshot's wire form: canonical JSON, identical in every process."""
    text = json.dumps(snapshot.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return text.encode("ascii")


def decode_snapshot(data: bytes | str, *, max_bytes: int) -> FleetSnapshot:
    """Parse and check a snapshot read from the store.

    Args:
        data: The stored or published bytes.
        max_bytes: Larger input is rejected before it is parsed.

    Returns:
        The snapshot.

    Raises:
        SnapshotError: Anything is wrong; the message says what (bounded).
    """
    if len(data) > max_bytes:
        raise SnapshotError(f"snapshot of {len(data)} bytes exceeds {max_bytes}")
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise SnapshotError(f"not JSON: {str(exc)[:100]}") from None
    if not isinstance(raw, dict):
        raise SnapshotError("expected a JSON object")
    if raw.get("v") != SNAPSHOT_VERSION:
        raise SnapshotError(f"unsupported snapshot version {_short(raw.get('v'))}")
    missing = sorted(_TOP_KEYS - raw.keys())
    if missing:
        raise SnapshotError(f"missing keys {missing}")
    generation = _integer(raw["generation"], "generation")
    fence = _integer(raw["fence"], "fence")
    leader = _text(raw["leader"], "leader", _MAX_ID)
    fingerprint = _text(raw["fingerprint"], "fingerprint", _MAX_ID)
    at = _time(raw["at"], "at")
    endpoints = raw["endpoints"]
    if not isinstance(endpoints, dict):
        raise SnapshotError("endpoints: expected an object")
    if len(endpoints) > MAX_SNAPSHOT_ENDPOINTS:
        raise SnapshotError(f"endpoints: more than {MAX_SNAPSHOT_ENDPOINTS}")
    verdicts: list[tuple[str, EndpointHealth]] = []
    for endpoint_id, value in sorted(endpoints.items()):
        verdicts.append((_text(endpoint_id, "endpoint id", _MAX_ID), _health(endpoint_id, value)))
    return FleetSnapshot(generation, fence, leader, fingerprint, at, tuple(verdicts))


def _health(endpoint_id: str, value: object) -> EndpointHealth:
    where = f"endpoints[{_short(endpoint_id)}]"
    if not isinstance(value, Mapping) or not value.keys() >= _ENDPOINT_KEYS:
        raise SnapshotError(f"{where}: expected an object with {sorted(_ENDPOINT_KEYS)}")
    healthy = value["healthy"]
    if not isinstance(healthy, bool):
        raise SnapshotError(f"{where}.healthy: expected true or false")
    reason = value["reason"]
    if healthy:
        reason = None
    elif not isinstance(reason, str) or not 0 < len(reason) <= _MAX_REASON:
        raise SnapshotError(f"{where}.reason: expected a short string for an ejection")
    detail = _text(value["detail"], f"{where}.detail", _MAX_DETAIL, empty=True)
    return EndpointHealth(healthy, reason, detail, _time(value["since"], f"{where}.since"))


def _integer(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_GENERATION:
        raise SnapshotError(f"{what}: expected an integer from 0 to 2**63-1")
    return value


def _time(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SnapshotError(f"{what}: expected a unix time")
    seconds = float(value) if not isinstance(value, int) or value < 1 << 53 else math.inf
    if not math.isfinite(seconds) or seconds < 0:
        raise SnapshotError(f"{what}: expected a finite, positive unix time")
    return seconds


def _text(value: object, what: str, limit: int, *, empty: bool = False) -> str:
    if not isinstance(value, str) or len(value) > limit or (not value and not empty):
        raise SnapshotError(f"{what}: expected a string of at most {limit} characters")
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."
