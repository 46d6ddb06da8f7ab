"""The Redis replication-lag probe (needs the ``redis`` extra: redis-py).

Each round reads ``INFO replication`` from the master first, then from every
replica concurrently, and computes ``lag = master_repl_offset - replica offset``
in bytes. Reading the master first means a replica can only look *less* behind
than it is by the writes that landed in between, never more, so a busy master
does not eject healthy replicas; a negative difference counts as 0.

A replica observation is bad when it does not answer within the timeout, when
its link to the master is down, when it replicates another history (its
``master_replid`` differs from the master's), or when its lag exceeds
``max_lag_bytes``. When the master itself cannot be read, no lag is known:
replicas that answer get no verdict, even if their link is down (they are not
ejected for the master's trouble); replicas that do not answer are bad; and the
round reports ``master_ok=False``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

try:
    import redis
    import redis.asyncio as redis_async
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:
    raise ImportError(
        "the Redis lag probe needs redis-py: pip install 'selectors-lib[redis]'"
    ) from None

from ._probes import ProbeResult, describe
from ._settings import RedisLagProbeSettings
from ._state import Observation

__all__ = ["RedisLagProbe", "replica_observation"]

_Info = Mapping[str, Any]


def _offset(info: _Info, key: str) -> int | None:
    value = info.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def replica_observation(master: _Info | None, replica: _Info, max_lag_bytes: int) -> Observation:
    """Judge one replica from its ``INFO replication`` and the master's (pure).

    Args:
        master: The master's parsed ``INFO replication``, or None when it could not be read.
        replica: The replica's parsed ``INFO replication``.
        max_lag_bytes: The largest acceptable lag.

    Returns:
        The observation: good, bad (reason ``lag``) or without verdict.
    """
    if master is None:
        # Its link is likely down too, but the master is the one in trouble: ejecting
        # every replica for it would only move keys around. No verdict.
        return Observation(None, detail="master unreadable: lag unknown")
    role = replica.get("role")
    if role != "slave":
        return Observation(False, "lag", f"not a replica (role {str(role)[:20]})")
    link = replica.get("master_link_status")
    if link != "up":
        return Observation(False, "lag", f"replication link {str(link)[:20]}")
    master_offset = _offset(master, "master_repl_offset")
    replica_offset = _offset(replica, "slave_repl_offset")
    if replica_offset is None:
        replica_offset = _offset(replica, "master_repl_offset")
    if master_offset is None or replica_offset is None:
        return Observation(None, detail="no replication offset reported: lag unknown")
    master_id, replica_id = master.get("master_replid"), replica.get("master_replid")
    if master_id and replica_id and master_id != replica_id:
        # Offsets of two histories cannot be compared: it follows some other master.
        return Observation(False, "lag", "replicates another master (replication id differs)")
    lag = max(0, master_offset - replica_offset)
    if lag > max_lag_bytes:
        return Observation(False, "lag", f"{lag} bytes behind (max {max_lag_bytes})", lag)
    return Observation(True, detail=f"{lag} bytes behind", lag_bytes=lag)


def _client_options(timeout: float) -> dict[str, Any]:
    # redis-py retries timeouts 10 times with backoff by default; a probe must
    # answer within its timeout, so one attempt only.
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry_on_timeout": False,
        "decode_responses": True,
    }


class RedisLagProbe:
    """Measure each replica's replication lag against its master.

    Args:
        settings: The probe's validated settings.
    """

    measures_lag = True

    def __init__(self, settings: RedisLagProbeSettings) -> None:
        self.settings = settings
        self._timeout = 0.0  # the timeout the clients were made with
        self._clients: dict[str, redis.Redis] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._aclients: dict[str, redis_async.Redis] = {}

    @property
    def name(self) -> str:
        """The probe's name."""
        return self.settings.name

    @property
    def endpoint_ids(self) -> tuple[str, ...]:
        """The replicas it observes."""
        return self.settings.endpoint_ids

    # -- blocking --------------------------------------------------------------------

    def check(self, timeout: float) -> ProbeResult:
        """Read the master, then every replica concurrently; judge each replica."""
        if timeout != self._timeout:
            self.close()
            self._timeout = timeout
        try:
            master: _Info | None = self._client("", self.settings.master).info("replication")
            master_detail = ""
        except (redis.RedisError, OSError) as exc:
            master, master_detail = None, f"master unreadable: {describe(exc)}"
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=min(len(self.settings.replicas), 16),
                thread_name_prefix=f"probe-{self.name}",
            )
        futures = [
            (endpoint_id, self._executor.submit(self._replica, endpoint_id, url, master))
            for endpoint_id, url in self.settings.replicas
        ]
        observations = tuple((endpoint_id, future.result()) for endpoint_id, future in futures)
        return ProbeResult(observations, master is not None, master_detail)

    def _client(self, key: str, url: str) -> redis.Redis:
        client = self._clients.get(key)
        if client is None:
            client = redis.Redis.from_url(
                url, retry=Retry(NoBackoff(), 0), **_client_options(self._timeout)
            )
            self._clients[key] = client
        return client

    def _replica(self, endpoint_id: str, url: str, master: _Info | None) -> Observation:
        try:
            info = self._client(f"replica:{endpoint_id}", url).info("replication")
        except (redis.RedisError, OSError) as exc:
            return Observation(False, "probe", f"no answer: {describe(exc)}")
        return replica_observation(master, info, self.settings.max_lag_bytes)

    def close(self) -> None:
        """Close connections and stop worker threads."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # -- asyncio ---------------------------------------------------------------------

    async def acheck(self, timeout: float) -> ProbeResult:
        """Like :meth:`check`, on the running event loop."""
        loop = asyncio.get_running_loop()
        if timeout != self._timeout or loop is not self._aloop:
            # Clients are bound to the loop that made them; a new loop needs new ones.
            if loop is self._aloop:
                await self.aclose()
            self._aclients = {}
            self._aloop, self._timeout = loop, timeout
        try:
            master: _Info | None = await self._aclient("", self.settings.master).info("replication")
            master_detail = ""
        except (TimeoutError, redis.RedisError, OSError) as exc:
            master, master_detail = None, f"master unreadable: {describe(exc)}"
        results = await asyncio.gather(
            *(self._areplica(eid, url, master) for eid, url in self.settings.replicas)
        )
        observations = tuple(zip(self.endpoint_ids, results, strict=True))
        return ProbeResult(observations, master is not None, master_detail)

    def _aclient(self, key: str, url: str) -> redis_async.Redis:
        client = self._aclients.get(key)
        if client is None:
            client = redis_async.Redis.from_url(
                url,
                retry=AsyncRetry(NoBackoff(), 0),
                **_client_options(self._timeout),
            )
            self._aclients[key] = client
        return client

    async def _areplica(self, endpoint_id: str, url: str, master: _Info | None) -> Observation:
        try:
            info = await self._aclient(f"replica:{endpoint_id}", url).info("replication")
        except (TimeoutError, redis.RedisError, OSError) as exc:
            return Observation(False, "probe", f"no answer: {describe(exc)}")
        return replica_observation(master, info, self.settings.max_lag_bytes)

    async def aclose(self) -> None:
        """Close the asyncio connections."""
        clients, self._aclients = self._aclients, {}
        for client in clients.values():
            await client.aclose()
