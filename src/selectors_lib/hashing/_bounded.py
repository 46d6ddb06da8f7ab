"""Consistent hashing with bounded loads (Mirrokni, Thorup & Zadimoghaddam 2018)."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ._base import HashTable

__all__ = ["BoundedLoad"]


class BoundedLoad:
    """Caps each host's in-flight requests at ``ceil(c * (m + 1) * share)``.

    ``m`` is the number of requests in flight, ``share`` the host's weight over the
    total weight. :meth:`acquire` walks the key's deterministic preference order of
    the wrapped table and returns the first host still under its cap, so a key leaves
    its first choice only while that host is over the bound, and comes back as soon
    as it is not. No host ever carries more than ``c`` times its fair share (plus
    rounding), at the price of stickiness: under load, keys spill to their second
    choice (cache misses there). ``capacity_factor`` trades one for the other: 1.25
    is the paper's sweet spot; larger values spill less.

    The counters are mutable state shared across threads, so every operation takes
    one lock (this wrapper is opt-in; plain tables need none).
    """

    def __init__(self, table: HashTable, capacity_factor: float = 1.25) -> None:
        """Wrap ``table``.

        Args:
            table: A table from :func:`selectors_lib.hashing.build`.
            capacity_factor: ``c > 1``.

        Raises:
            ValueError: If ``capacity_factor`` is not a finite number above 1.
        """
        c = float(capacity_factor)
        if not math.isfinite(c) or c <= 1.0:
            raise ValueError(f"capacity_factor must be a finite number > 1, got {capacity_factor}")
        self._table = table
        self._c = c
        hosts = table.hosts
        total = sum(table.weights)
        self._share = {h: w / total for h, w in zip(hosts, table.weights, strict=True)}
        self._load = dict.fromkeys(hosts, 0)
        self._total = 0
        self._lock = threading.Lock()

    @property
    def table(self) -> HashTable:
        """The wrapped table."""
        return self._table

    @property
    def capacity_factor(self) -> float:
        """The factor ``c``."""
        return self._c

    def _bound(self, host: str, total: int) -> int:
        return math.ceil(self._c * (total + 1) * self._share[host])

    def acquire(self, key: str) -> str:
        """Pick a host for ``key`` and count one request in flight on it.

        Returns:
            The first host in ``key``'s preference order whose load is below its
            bound (the least loaded relative to its bound if none is, which needs a
            ``capacity_factor`` barely above 1 and rounding).
        """
        first = self._table.lookup(key)
        with self._lock:
            total = self._total
            if self._load[first] < self._bound(first, total):
                return self._take(first)
        order = self._table.preference(key, len(self._table.hosts))
        with self._lock:
            total = self._total
            for host in order:
                if self._load[host] < self._bound(host, total):
                    return self._take(host)
            host = min(order, key=lambda h: (self._load[h] / self._bound(h, total), order.index(h)))
            return self._take(host)

    def _take(self, host: str) -> str:
        self._load[host] += 1
        self._total += 1
        return host

    def release(self, host: str) -> None:
        """Count one request on ``host`` as finished.

        Raises:
            ValueError: If ``host`` has no request in flight.
        """
        with self._lock:
            if self._load.get(host, 0) <= 0:
                raise ValueError(f"release of {host!r} without a matching acquire")
            self._load[host] -= 1
            self._total -= 1

    @contextmanager
    def lease(self, key: str) -> Iterator[str]:
        """``with bounded.lease(key) as host:`` -- acquire, and release on exit."""
        host = self.acquire(key)
        try:
            yield host
        finally:
            self.release(host)

    def in_flight(self) -> dict[str, int]:
        """Return a snapshot of in-flight counts per host."""
        with self._lock:
            return dict(self._load)
