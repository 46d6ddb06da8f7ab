"""Jump consistent hash (Lamping & Veach 2014), bit-compatible with Guava."""

from __future__ import annotations

from ._base import check_n
from ._xx import MASK64, key_hash, xxh64

__all__ = ["JumpTable", "jump_hash"]

_LCG_MULTIPLIER = 2862933555777941757
_TWO_POW_31 = 2147483648.0
_INT_MAX = (1 << 31) - 1


def jump_hash(key: int, buckets: int) -> int:
    """Map a 64-bit key to a bucket in ``[0, buckets)`` with jump consistent hashing.

    The result equals Guava's ``Hashing.consistentHash(long, int)`` for the same 64 key
    bits: the same linear congruential generator (``state = 2862933555777941757 *
    state + 1`` mod 2**64) and the same double arithmetic, including Guava's int
    overflow when ``state >>> 33 == 2**31 - 1`` (its ``nextDouble`` then returns -1.0,
    the jump target is negative and the current candidate is final).

    Args:
        key: Any int; it is reduced mod 2**64 first, so ``-1`` and ``2**64 - 1`` agree
            (as Java's ``long`` -1 has the same bits).
        buckets: Number of buckets, ``1 <= buckets <= 2**31 - 1`` (a Java ``int``).

    Returns:
        The bucket index. Growing ``buckets`` from ``b`` to ``b + 1`` moves a key only
        to the new bucket ``b``, with probability ``1 / (b + 1)``.

    Raises:
        ValueError: If ``buckets`` is out of range.
    """
    if isinstance(buckets, bool) or not isinstance(buckets, int):
        raise ValueError(f"buckets must be an int, got {type(buckets).__name__}")
    if not 1 <= buckets <= _INT_MAX:
        raise ValueError(f"buckets must be in [1, {_INT_MAX}], got {buckets}")
    state = key & MASK64
    candidate = 0
    while True:
        state = (_LCG_MULTIPLIER * state + 1) & MASK64
        top = state >> 33
        if top == _INT_MAX:
            # Guava computes (int)(state >>> 33) + 1 in 32-bit arithmetic: it wraps to
            # Integer.MIN_VALUE, nextDouble() is -1.0 and the jump target is negative.
            return candidate
        nxt = int((candidate + 1) / ((top + 1) / _TWO_POW_31))
        if nxt >= buckets:
            return candidate
        candidate = nxt


class JumpTable:
    """Hosts indexed by :func:`jump_hash` over their given order.

    Only appending a host or removing the last one is minimally disruptive: removing
    a host from the middle shifts the bucket of every later host.
    """

    __slots__ = ("_hosts", "_n")

    def __init__(self, hosts: tuple[str, ...]) -> None:
        self._hosts = hosts
        self._n = len(hosts)

    @property
    def hosts(self) -> tuple[str, ...]:
        """The host keys in bucket order."""
        return self._hosts

    @property
    def weights(self) -> tuple[int, ...]:
        """All 1: jump hashing has no weights."""
        return (1,) * self._n

    def lookup(self, key: str) -> str:
        """Return the host for ``key``."""
        return self._hosts[jump_hash(key_hash(key), self._n)]

    def lookup_hash(self, h: int) -> str:
        """Return the host for the 64-bit hash ``h``."""
        return self._hosts[jump_hash(h, self._n)]

    def preference(self, key: str, n: int) -> tuple[str, ...]:
        """Return ``key``'s first ``n`` distinct hosts.

        The first is ``lookup(key)``; each next one is chosen by jump-hashing a derived
        hash (xxHash64 of the previous hash's 8 little-endian bytes, seeded with the
        step number) over the hosts not yet chosen, in their original order.
        """
        n = min(check_n(n), self._n)
        remaining = list(self._hosts)
        h = key_hash(key)
        out: list[str] = []
        for step in range(n):
            out.append(remaining.pop(jump_hash(h, len(remaining))))
            h = xxh64(h.to_bytes(8, "little"), step + 1)
        return tuple(out)

    def __repr__(self) -> str:
        return f"JumpTable(hosts={len(self._hosts)})"
