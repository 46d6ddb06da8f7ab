"""The shared plane's store: leadership by lease, and fenced publication.

Everything a fleet shares lives under one namespace in one Redis, in keys with
the same hash tag (``selectors-lib:{ns}:...``) so that the scripts below touch a
single slot, on a plain server or a cluster:

- ``lease``: the leader's token ``<fence>:<instance>``, with a TTL. Taken only
  when absent (``SET NX PX`` semantics), renewed only by its holder
  (compare-and-extend), so two instances can never both renew it.
- ``fence``: a counter incremented by every new leader: tokens never repeat.
- ``snapshot`` and ``generation``: the current verdict set and its generation,
  written only by a script that first checks the writer's token is still the
  lease's, and that the generation grows. A leader that stalled past its lease
  (a long pause, a partition) is fenced off: its late write is refused.
- the channel ``snapshots``: every accepted snapshot, published by the same
  script, for prompt delivery; the key is the catch-up path.
- ``instance:<name>``: what each instance last reported (mode, generation,
  fingerprint), expiring on its own when the instance goes away.

Every command has a deadline (``timeout``) and no retry: a store that does not
answer in time is unreachable for this round, and the plane falls back to
local probing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:
    raise ImportError(
        "the shared health plane needs redis-py: pip install 'selectors-lib[redis]'"
    ) from None

import attrs

from ._shared_settings import SharedSettings

__all__ = ["FleetStore", "LeaseState", "PublishResult", "StoreError", "fence_of"]

#: What a store call can raise when the store is unreachable or misbehaves.
StoreError = (redis.RedisError, OSError)

# KEYS: lease, fence, generation. ARGV: instance, lease ms, the caller's token ("" if none).
# Returns {status, holder, generation, pttl}: 2 acquired, 1 renewed, 0 held by another.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
local gen = redis.call('GET', KEYS[3]) or '0'
if holder then
  if ARGV[3] ~= '' and holder == ARGV[3] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, holder, gen, tonumber(ARGV[2])}
  end
  return {0, holder, gen, redis.call('PTTL', KEYS[1])}
end
local fence = redis.call('INCR', KEYS[2])
local token = fence .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return {2, token, gen, tonumber(ARGV[2])}
"""

# KEYS: lease, snapshot, generation. ARGV: token, generation, payload, channel, lease ms.
# Returns {status, stored generation}: 1 published, 0 not the lease holder, -1 stale generation.
_PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {0, redis.call('GET', KEYS[3]) or '0'}
end
-- A stored generation that is not a number (written by someone else) counts as 0.
local stored = redis.call('GET', KEYS[3]) or '0'
if tonumber(ARGV[2]) <= (tonumber(stored) or 0) then
  return {-1, stored}
end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[4], ARGV[3])
return {1, ARGV[2]}
"""

# KEYS: lease. ARGV: token. Deletes the lease only if the caller still holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

#: At most this many instance records are read by :meth:`FleetStore.instances`.
MAX_INSTANCES = 1000


@attrs.frozen
class LeaseState:
    """The lease as one acquire-or-renew call found it.

    Args:
        mine: True when the caller holds it (acquired now or renewed).
        acquired: True when the caller took it just now (a new fence).
        holder: The holder's token, ``<fence>:<instance>`` ("" if none).
        generation: The store's current snapshot generation.
        ttl: Milliseconds left on the lease.
    """

    mine: bool
    acquired: bool
    holder: str
    generation: int
    ttl: int

    @property
    def fence(self) -> int:
        """The holder's fencing number (0 when unknown)."""
        return fence_of(self.holder)


@attrs.frozen
class PublishResult:
    """What a fenced publish did.

    Args:
        published: True when the snapshot is now the current one.
        fenced: True when the caller no longer holds the lease.
        generation: The store's generation after the call.
    """

    published: bool
    fenced: bool
    generation: int


def _int(value: object) -> int:
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return _digits(text)


def fence_of(holder: str) -> int:
    """The fencing number of a lease token ``<fence>:<instance>`` (0 when malformed)."""
    return _digits(holder.partition(":")[0])


def _digits(text: str) -> int:
    """A counter the store holds: 1 to 19 ASCII digits, or 0 (``"²".isdigit()`` is true)."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 20 else 0


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")[:300]
    return "" if value is None else str(value)[:300]


class FleetStore:
    """The plane's keys in one Redis, through redis-py (blocking, with deadlines).

    Args:
        settings: The ``health.shared`` section.
    """

    def __init__(self, settings: SharedSettings) -> None:
        self.settings = settings
        prefix = f"selectors-lib:{{{settings.namespace}}}:"
        self.lease_key = prefix + "lease"
        self.fence_key = prefix + "fence"
        self.snapshot_key = prefix + "snapshot"
        self.generation_key = prefix + "generation"
        self.instance_prefix = prefix + "instance:"
        self.channel = prefix + "snapshots"
        self.client = redis.Redis.from_url(
            settings.url,
            socket_timeout=settings.timeout,
            socket_connect_timeout=settings.timeout,
            retry_on_timeout=False,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._acquire = self.client.register_script(_ACQUIRE)
        self._publish = self.client.register_script(_PUBLISH)
        self._release = self.client.register_script(_RELEASE)

    @property
    def lease_ms(self) -> int:
        """The lease's length in milliseconds."""
        return max(1, round(self.settings.lease * 1000))

    def acquire(self, instance: str, token: str) -> LeaseState:
        """Renew the lease if ``token`` holds it, take it if nobody does.

        Args:
            instance: This instance's name.
            token: The token this instance holds ("" when it holds none).
        """
        status, holder, generation, ttl = self._acquire(
            keys=(self.lease_key, self.fence_key, self.generation_key),
            args=(instance, self.lease_ms, token),
        )
        return LeaseState(
            mine=int(status) > 0,
            acquired=int(status) == 2,
            holder=_text(holder),
            generation=_int(generation),
            ttl=max(0, int(ttl)),
        )

    def publish(self, token: str, generation: int, payload: bytes) -> PublishResult:
        """Make ``payload`` the current snapshot if ``token`` still holds the lease.

        Args:
            token: The publisher's lease token.
            generation: The snapshot's generation; must exceed the stored one.
            payload: The encoded snapshot.
        """
        status, stored = self._publish(
            keys=(self.lease_key, self.snapshot_key, self.generation_key),
            args=(token, generation, payload, self.channel, self.lease_ms),
        )
        return PublishResult(int(status) == 1, int(status) == 0, _int(stored))

    def release(self, token: str) -> None:
        """Give the lease up (if still held), so another instance takes over at once."""
        self._release(keys=(self.lease_key,), args=(token,))

    def current(self) -> bytes | None:
        """The stored snapshot's bytes, if any (bounded by the settings' size cap)."""
        # One bounded read: at most one byte past the cap, so the decoder sees
        # "too large" without the whole value being read, even if it was replaced
        # a moment ago (a size check, then a GET, would read the new one whole).
        # A missing key reads as empty, like an empty value: nothing published.
        value = self.client.getrange(self.snapshot_key, 0, self.settings.max_snapshot_bytes)
        return value if isinstance(value, bytes) and value else None

    def lease_holder(self) -> tuple[str, int]:
        """``(holder token, milliseconds left)``; ``("", 0)`` without a leader."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.lease_key)
        pipe.pttl(self.lease_key)
        holder, ttl = pipe.execute()
        return _text(holder), max(0, int(ttl))

    def report(self, instance: str, record: dict[str, Any]) -> None:
        """Record what this instance serves; the record expires after three leases."""
        self.client.set(
            self.instance_prefix + instance,
            json.dumps(record, sort_keys=True, separators=(",", ":")),
            px=3 * self.lease_ms,
        )

    def forget(self, instance: str) -> None:
        """Remove this instance's record (a clean shutdown)."""
        self.client.delete(self.instance_prefix + instance)

    def instances(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Each live instance's record, by name (at most :data:`MAX_INSTANCES`)."""
        names: list[bytes] = []
        for key in self.client.scan_iter(match=self.instance_prefix + "*", count=200):
            names.append(key)
            if len(names) >= MAX_INSTANCES:
                break
        names.sort()
        values = self.client.mget(names) if names else []
        for key, value in zip(names, values, strict=True):
            if not isinstance(value, bytes) or len(value) > 4096:
                continue
            try:
                record = json.loads(value)
            except (ValueError, RecursionError):  # deep nesting fits in 4 KiB
                continue
            if isinstance(record, dict):
                yield _text(key)[len(self.instance_prefix) :], record

    def pubsub(self) -> Any:
        """A new subscription connection (the caller subscribes to :attr:`channel`)."""
        return self.client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        """Close every connection."""
        self.client.close()
