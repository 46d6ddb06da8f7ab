"""The Redis replication-lag probe.

Each round reads ``INFO replication`` from the master first, then from every
replica concurrently, and computes ``lag = master_repl_offset - replica offset``
in bytes. Reading the master first means a replica can only look *less* behind
than it is by the writes that landed in between, never more, so a busy master
does not eject healthy replicas; a negative difference counts as 0.

A replica observation is bad when it does not answer within the timeout (one
total deadline for the whole exchange, not per read), when its reply is
malformed, oversized or not UTF-8, when its link to the master is down, when it
replicates another history (its ``master_replid`` differs from the master's),
or when its lag exceeds ``max_lag_bytes``. Each replica is judged on its own
reply: one that drips, lies or floods fails alone. When the master itself
cannot be read (no answer, or an answer that is not a usable ``INFO``), no lag
is known: replicas that answer get no verdict, even if their link is down (they
are not ejected for the master's trouble); replicas that do not answer are bad;
and the round reports ``master_ok=False``.

The probe speaks RESP itself (``_resp``): no extra is needed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs

from selectors_lib._consistent import Position

from ._probes import WAIT_FACTOR, ProbeResult, describe
from ._resp import RedisTarget, ainfo_replication, info_replication, parse_target
from ._settings import RedisLagProbeSettings
from ._state import Observation

__all__ = ["RedisLagProbe", "replica_observation", "replica_position"]

_Info = Mapping[str, Any]


#: An offset as Redis writes it: ASCII digits, at most 20 (2**64 has 20).
_OFFSET = re.compile(r"[0-9]{1,20}")


class _MalformedOffset(ValueError):
    """An offset field is present but not a plausible offset."""


def _offset(info: _Info, key: str) -> int | None:
    """The offset under ``key``; None when absent.

    Raises:
        _MalformedOffset: It is present but not 1 to 20 ASCII digits (``str.isdigit``
            accepts "²", and ``int()`` of 5000 digits raises, or costs quadratic time).
    """
    value = info.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 64:
        return value
    if isinstance(value, str) and _OFFSET.fullmatch(value):
        return int(value)
    shown = repr(value)[:24] if isinstance(value, str) else type(value).__name__
    raise _MalformedOffset(f"malformed {key} ({shown})")


def master_problem(master: _Info) -> str | None:
    """Why a master's ``INFO replication`` cannot serve to judge its replicas, if it cannot."""
    try:
        _offset(master, "master_repl_offset")
    except _MalformedOffset as exc:
        return str(exc)
    return None


def replica_position(replica: _Info, at: float) -> Position | None:
    """The replication position a replica's ``INFO replication`` reports, if it reports one.

    Args:
        replica: The replica's parsed ``INFO replication``.
        at: ``time.monotonic()`` when the read started (so the age is never understated).

    Returns:
        Its position, or None when a field is missing or malformed.
    """
    replid = replica.get("master_replid")
    role = replica.get("role")
    if role not in ("slave", "master") or not isinstance(replid, str) or len(replid) != 40:
        return None
    # A replica promoted to master (a failover) reports its own, new history:
    # tokens from the old one then never qualify it.
    key = "slave_repl_offset" if role == "slave" else "master_repl_offset"
    try:
        offset = _offset(replica, key)
    except _MalformedOffset:
        return None
    return None if offset is None else Position(replid, offset, at)


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
    try:
        master_offset = _offset(master, "master_repl_offset")
    except _MalformedOffset:
        return Observation(None, detail="master unreadable: lag unknown")
    try:
        replica_offset = _offset(replica, "slave_repl_offset")
        if replica_offset is None:
            replica_offset = _offset(replica, "master_repl_offset")
    except _MalformedOffset as exc:
        return Observation(False, "probe", f"bad INFO reply: {exc}")
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


class RedisLagProbe:
    """Measure each replica's replication lag against its master.

    Every exchange has one total deadline (``timeout``) and a capped reply; the
    blocking and the asyncio checks judge replies the same way. Blocking checks
    run one thread per replica at most: a replica whose previous check still
    runs (stuck in name resolution, which no socket timeout bounds) is bad
    without a new check, and its peers are judged on their own answers.

    Args:
        settings: The probe's validated settings.
    """

    measures_lag = True

    def __init__(self, settings: RedisLagProbeSettings) -> None:
        self.settings = settings
        self._targets: dict[str, RedisTarget | str] = {
            key: _target(url) for key, url in (("", settings.master), *settings.replicas)
        }
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._running: dict[str, Future[Observation]] = {}
        self._master_running: Future[dict[str, str]] | None = None

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
        """Read the master, then every replica concurrently; judge each replica.

        Every exchange runs on the probe's own threads, at most one per server at
        a time, and is waited for ``WAIT_FACTOR * timeout`` at most: a master stuck
        in name resolution is unreadable (no verdict for anyone), a replica stuck
        there is bad alone. Blocks ``2 * WAIT_FACTOR * timeout`` at most.
        """
        with self._lock:
            executor = self._pool()
            running = self._master_running
            if running is None or running.done():
                running = executor.submit(self._read, "", timeout)
                self._master_running = running
                fresh = True
            else:
                fresh = False
        master: _Info | None = None
        if fresh:
            concurrent.futures.wait([running], timeout=timeout * WAIT_FACTOR)
        if not fresh:
            master_detail = "master unreadable: previous check still running"
        elif not running.done():
            master_detail = f"master unreadable: no answer within {timeout * WAIT_FACTOR:g}s"
        elif running.cancelled():
            master_detail = "master unreadable: check cancelled (probe closed)"
        elif (exc := running.exception()) is not None:
            master_detail = f"master unreadable: {describe(exc)}"
        else:
            master, master_detail = _usable(running.result())
        submitted: list[tuple[str, Future[Observation] | None]] = []
        with self._lock:
            executor = self._pool()
            for endpoint_id, _ in self.settings.replicas:
                previous = self._running.get(endpoint_id)
                if previous is not None and not previous.done():
                    submitted.append((endpoint_id, None))
                    continue
                future = executor.submit(self._replica, endpoint_id, master, timeout)
                self._running[endpoint_id] = future
                submitted.append((endpoint_id, future))
        pending = [future for _, future in submitted if future is not None]
        if pending:
            concurrent.futures.wait(pending, timeout=timeout * WAIT_FACTOR)
        observations = tuple(
            (endpoint_id, _outcome(future, timeout)) for endpoint_id, future in submitted
        )
        return ProbeResult(observations, master is not None, master_detail)

    def _pool(self) -> ThreadPoolExecutor:
        """The probe's threads: one per server (the master and each replica) at most."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=len(self.settings.replicas) + 1,
                thread_name_prefix=f"probe-{self.name}",
            )
        return self._executor

    def _read(self, key: str, timeout: float) -> dict[str, str]:
        return info_replication(self._resolved(key), timeout)

    def _resolved(self, key: str) -> RedisTarget:
        target = self._targets[key]
        if isinstance(target, str):
            raise ValueError(target)
        return target

    def _replica(self, endpoint_id: str, master: _Info | None, timeout: float) -> Observation:
        at = time.monotonic()
        try:
            info = info_replication(self._resolved(endpoint_id), timeout)
        except Exception as exc:  # whatever goes wrong, it is this replica's failure alone
            return Observation(False, "probe", f"no answer: {describe(exc)}")
        return _with_position(
            replica_observation(master, info, self.settings.max_lag_bytes), info, at
        )

    def close(self) -> None:
        """Stop the worker threads (checks in flight end at their deadline)."""
        with self._lock:
            executor, self._executor = self._executor, None
            self._running.clear()
            self._master_running = None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # -- asyncio ---------------------------------------------------------------------

    async def acheck(self, timeout: float) -> ProbeResult:
        """Like :meth:`check`, on the running event loop (no threads)."""
        try:
            master, master_detail = _usable(await ainfo_replication(self._resolved(""), timeout))
        except Exception as exc:  # any failure of the master's exchange: unreadable
            master, master_detail = None, f"master unreadable: {describe(exc)}"
        results = await asyncio.gather(
            *(self._areplica(eid, master, timeout) for eid, _ in self.settings.replicas)
        )
        observations = tuple(zip(self.endpoint_ids, results, strict=True))
        return ProbeResult(observations, master is not None, master_detail)

    async def _areplica(
        self, endpoint_id: str, master: _Info | None, timeout: float
    ) -> Observation:
        at = time.monotonic()
        try:
            info = await ainfo_replication(self._resolved(endpoint_id), timeout)
        except Exception as exc:  # whatever goes wrong, it is this replica's failure alone
            return Observation(False, "probe", f"no answer: {describe(exc)}")
        return _with_position(
            replica_observation(master, info, self.settings.max_lag_bytes), info, at
        )

    async def aclose(self) -> None:
        """Nothing to release: each asyncio check opens and closes its own connection."""


def _with_position(observation: Observation, info: _Info, at: float) -> Observation:
    position = replica_position(info, at)
    return observation if position is None else attrs.evolve(observation, position=position)


def _target(url: str) -> RedisTarget | str:
    """The parsed URL, or why it cannot be used (reported as that endpoint's failure)."""
    try:
        return parse_target(url)
    except ValueError as exc:
        return f"unusable URL: {exc}"


def _usable(master: _Info) -> tuple[_Info | None, str]:
    """The master's INFO and no detail, or None and why it cannot serve to judge."""
    problem = master_problem(master)
    if problem is None:
        return master, ""
    return None, f"master unreadable: {problem}"


def _outcome(future: Future[Observation] | None, timeout: float) -> Observation:
    if future is None:
        return Observation(False, "probe", "previous check still running")
    if not future.done():
        return Observation(False, "probe", f"no answer within {timeout:g}s")
    if future.cancelled():
        return Observation(False, "probe", "check cancelled (probe closed)")
    return future.result()  # _replica catches everything: no exception here
