"""A ketama-style hash ring, bit-compatible with Envoy's ``ring_hash`` load balancer."""

from __future__ import annotations

import math
from bisect import bisect_left

from ._base import check_n
from ._rendezvous import complete_order
from ._xx import MASK64, encode, key_hash, xxh64

__all__ = ["DEFAULT_MAX_RING_SIZE", "DEFAULT_MIN_RING_SIZE", "RingTable"]

DEFAULT_MIN_RING_SIZE = 1024
DEFAULT_MAX_RING_SIZE = 8388608


def _normalized(weights: tuple[int, ...]) -> tuple[list[float], float, float]:
    """Normalise weights exactly as Envoy's ``normalizeHostWeights`` does.

    Envoy computes ``weight * 1.0 / sum`` in doubles and tracks the minimum (starting
    at 1.0) and maximum (starting at 0.0); Python floats are the same IEEE doubles, so
    the arithmetic below gives the same bits.
    """
    total = sum(weights)
    normalized = [(w * 1.0) / total for w in weights]
    return normalized, min([1.0, *normalized]), max([0.0, *normalized])


class RingTable:
    """Envoy ``ring_hash`` with ``XX_HASH``: the same ring, so the same host per hash.

    Our host key plays the part of Envoy's host address string (``"127.0.0.1:90"``)
    and the host order is Envoy's host-set order (it decides which hosts receive the
    fractional extra points). Envoy sorts points with ``std::sort``, whose order for
    two equal 64-bit hashes is unspecified; we keep equal points in build order (a
    collision among a few million xxHash64 values is not expected in practice).
    """

    __slots__ = ("_hosts", "_owners", "_points", "_size", "_weights")

    def __init__(
        self,
        hosts: tuple[str, ...],
        weights: tuple[int, ...],
        min_ring_size: int = DEFAULT_MIN_RING_SIZE,
        max_ring_size: int = DEFAULT_MAX_RING_SIZE,
    ) -> None:
        if min_ring_size > max_ring_size:
            # Envoy's own message for the same misconfiguration.
            raise ValueError(
                f"ring hash: minimum_ring_size ({min_ring_size}) > "
                f"maximum_ring_size ({max_ring_size})"
            )
        self._hosts = hosts
        self._weights = weights
        normalized, min_w, _ = _normalized(weights)
        # Scale so the lightest host gets a whole number of points, capped by the max.
        scale = min(math.ceil(min_w * min_ring_size) / min_w, float(max_ring_size))
        self._size = math.ceil(scale)
        entries: list[tuple[int, int, int]] = []
        current = 0.0
        target = 0.0
        seq = 0
        for index, (host, weight) in enumerate(zip(hosts, normalized, strict=True)):
            prefix = encode(host) + b"_"
            # Running sums across all hosts, so fractional shares carry over to the next.
            target += scale * weight
            i = 0
            while current < target:
                entries.append((xxh64(prefix + str(i).encode("ascii")), seq, index))
                seq += 1
                i += 1
                current += 1.0
        entries.sort()
        self._points = [e[0] for e in entries]
        self._owners = [e[2] for e in entries]

    @property
    def hosts(self) -> tuple[str, ...]:
        """The host keys, in the given order."""
        return self._hosts

    @property
    def weights(self) -> tuple[int, ...]:
        """The host weights, aligned with :attr:`hosts`."""
        return self._weights

    @property
    def ring_size(self) -> int:
        """Envoy's ``ring_hash_lb.size`` statistic (``ceil(scale)``)."""
        return self._size

    def points(self) -> tuple[tuple[int, str], ...]:
        """Return the ring as sorted ``(hash, host)`` pairs (for tests and debugging)."""
        hosts = self._hosts
        return tuple((p, hosts[o]) for p, o in zip(self._points, self._owners, strict=True))

    def lookup(self, key: str) -> str:
        """Return the host for ``key`` (xxHash64 of its UTF-8 bytes, as Envoy hashes a header)."""
        return self.lookup_hash(key_hash(key))

    def lookup_hash(self, h: int) -> str:
        """Return the owner of the first point with hash >= ``h``, wrapping to the first.

        Envoy's ketama binary search returns exactly this index (it treats the slot
        before point 0 as hash 0, and wraps past the end), so ``bisect_left`` suffices.
        """
        i = bisect_left(self._points, h & MASK64)
        if i == len(self._points):
            i = 0
        return self._hosts[self._owners[i]]

    def preference(self, key: str, n: int) -> tuple[str, ...]:
        """Return the first ``n`` distinct hosts met walking the ring clockwise from ``key``.

        This is the order Envoy's retry host predicate visits (``midp + attempt``),
        with repeated hosts skipped; hosts with no point on the ring come last, in
        rendezvous order of the key.
        """
        n = min(check_n(n), len(self._hosts))
        points = self._points
        owners = self._owners
        size = len(points)
        start = bisect_left(points, key_hash(key))
        order: list[int] = []
        seen: set[int] = set()
        for step in range(size):
            if len(order) >= n:
                break
            owner = owners[(start + step) % size]
            if owner not in seen:
                seen.add(owner)
                order.append(owner)
        # A tiny ring may leave hosts without points; they follow in rendezvous order.
        order = complete_order(order, self._hosts, key_hash(key), n)
        return tuple(self._hosts[o] for o in order)

    def __repr__(self) -> str:
        return f"RingTable(hosts={len(self._hosts)}, points={len(self._points)})"
