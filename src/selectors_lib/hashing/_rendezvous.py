"""Weighted rendezvous (highest-random-weight) hashing, logarithmic method."""

from __future__ import annotations

import math
from itertools import repeat
from typing import TYPE_CHECKING

from ._base import check_n
from ._xx import MASK64, encode, key_hash, xxh64

if TYPE_CHECKING:
    import decimal

__all__ = ["RendezvousTable", "Scorer", "complete_order", "first_top53"]

_TWO_POW_53 = 9007199254740992.0
# Float scores closer than this (relative) are re-ranked with exact decimal arithmetic,
# so libm differences between machines (at most an ulp or two) can never flip an order.
_NEAR = 1e-9
# Up to this many hosts a plain loop beats building a list of hashes in C.
_LOOP_MAX = 16


def _exact_score(top53: int, weight: int) -> decimal.Decimal:
    """``weight / -ln(u)`` with ``u = (top53 + 0.5) / 2**53``, in platform-independent decimal."""
    # Near-ties are rare: decimal is imported by the first one, not with the package.
    import decimal

    exact = decimal.Context(prec=60)
    u = exact.divide(decimal.Decimal(2 * top53 + 1), decimal.Decimal(2**54))
    return exact.divide(decimal.Decimal(weight), -exact.ln(u))


def first_top53(hashes: list[int]) -> int:
    """Return the first index whose top 53 bits (``x >> 11``) are the largest.

    Args:
        hashes: Non-empty unsigned 64-bit hashes.

    Returns:
        The index the scoring loop ``if x >> 11 > best`` would keep.
    """
    top = max(hashes)
    first = hashes.index(top)
    # An earlier hash may differ from the maximum only in its low 11 bits: it wins.
    floor = top >> 11 << 11
    if first and max(hashes[:first]) >= floor:
        first = next(j for j, x in enumerate(hashes) if x >= floor)
    return first


class Scorer:
    """Scores every host for a byte string; the shared core of ``rendezvous`` and ``slots``.

    Each host ``h`` gets ``x = xxHash64(data, seed=xxHash64(h))``. Its top 53 bits give
    ``u = (x >> 11 + 0.5) / 2**53``, exactly a double in (0, 1). The score is
    ``weight / -ln(u)``, whose maximum falls on each host with probability
    proportional to its weight (the logarithmic method of weighted HRW). With equal
    weights the score is monotone in ``x >> 11``, so the integers are compared
    directly. Ties go to the host whose key sorts first as UTF-8 bytes, so nothing
    depends on the input order, and near-ties of float scores are settled exactly.
    """

    __slots__ = ("_canon", "_seeds", "_uniform", "_weights")

    def __init__(self, hosts: tuple[str, ...], weights: tuple[int, ...]) -> None:
        # Tuples, not lists: the collector stops tracking a tuple of numbers, and a
        # 100k-rule configuration holds one scorer per pool.
        canon = tuple(sorted(range(len(hosts)), key=lambda i: encode(hosts[i])))
        self._canon = canon
        self._seeds = tuple([xxh64(encode(hosts[i])) for i in canon])
        self._weights = tuple([float(weights[i]) for i in canon])
        self._uniform = len(set(weights)) == 1

    @property
    def canon(self) -> tuple[int, ...]:
        """Host indices in canonical order (host key bytes): the order ties are settled in."""
        return self._canon

    @property
    def seeds(self) -> tuple[int, ...]:
        """Each host's seed ``xxHash64(host)``, in :attr:`canon` order."""
        return self._seeds

    @property
    def uniform(self) -> bool:
        """Whether every host has the same weight (scores compare as integers)."""
        return self._uniform

    def best(self, data: bytes) -> int:
        """Return the index (into the original host order) of the top-scoring host.

        The answer is always ``ranking(data, 1)[0]``; this only skips the sort.
        """
        seeds = self._seeds
        n = len(seeds)
        if self._uniform:
            if n <= _LOOP_MAX:
                best = -1
                best_j = 0
                for j, seed in enumerate(seeds):
                    v = xxh64(data, seed) >> 11
                    if v > best:
                        best = v
                        best_j = j
                return self._canon[best_j]
            # map() keeps the per-host loop in C: ~1.4x faster at 1000 hosts.
            return self._canon[first_top53(list(map(xxh64, repeat(data, n), seeds)))]
        if n == 1:
            return self._canon[0]
        # One pass keeps the best score (first index on equal scores, as the sort
        # by (-score, j) does) and the best of the rest.
        log = math.log
        top_score = second = -1.0
        best_j = 0
        for j, (w, seed) in enumerate(zip(self._weights, seeds, strict=True)):
            score = w / -log(((xxh64(data, seed) >> 11) + 0.5) / _TWO_POW_53)
            if score > top_score:
                second = top_score
                top_score = score
                best_j = j
            elif score > second:
                second = score
        if second < top_score * (1 - _NEAR):
            # No near-tie: ranking() would put best_j first without re-ranking.
            return self._canon[best_j]
        return self.ranking(data, 1)[0]

    def ranking(self, data: bytes, n: int) -> list[int]:
        """Return the indices of the ``n`` top-scoring hosts, best first."""
        seeds = self._seeds
        canon = self._canon
        tops = [xxh64(data, seed) >> 11 for seed in seeds]
        if self._uniform:
            order = sorted(range(len(seeds)), key=lambda j: (-tops[j], j))
            return [canon[j] for j in order[:n]]
        weights = self._weights
        log = math.log
        scores = [w / -log((t + 0.5) / _TWO_POW_53) for w, t in zip(weights, tops, strict=True)]
        order = sorted(range(len(seeds)), key=lambda j: (-scores[j], j))
        # Re-rank runs of near-equal float scores exactly (they are almost never seen).
        i = 0
        limit = min(len(order), n + 1)
        while i < limit - 1:
            k = i
            while k + 1 < len(order) and scores[order[k + 1]] >= scores[order[k]] * (1 - _NEAR):
                k += 1
            if k > i:
                run = order[i : k + 1]
                run.sort(key=lambda j: (-_exact_score(tops[j], int(weights[j])), j))
                order[i : k + 1] = run
            i = k + 1
        return [canon[j] for j in order[:n]]


class RendezvousTable:
    """Weighted rendezvous hashing over the key itself: O(hosts) per lookup.

    Removing any host moves only that host's keys; adding one moves keys only to it.
    """

    __slots__ = ("_hosts", "_scorer", "_weights")

    def __init__(self, hosts: tuple[str, ...], weights: tuple[int, ...]) -> None:
        self._hosts = hosts
        self._weights = weights
        self._scorer = Scorer(hosts, weights)

    @property
    def hosts(self) -> tuple[str, ...]:
        """The host keys, in the given order."""
        return self._hosts

    @property
    def weights(self) -> tuple[int, ...]:
        """The host weights, aligned with :attr:`hosts`."""
        return self._weights

    def lookup(self, key: str) -> str:
        """Return the top-scoring host for ``key`` (scored through ``key_hash(key)``)."""
        return self._hosts[self._scorer.best(key_hash(key).to_bytes(8, "little"))]

    def lookup_hash(self, h: int) -> str:
        """Return the top-scoring host for a 64-bit hash, scored over its 8 little-endian bytes.

        Scoring the key's 64-bit hash rather than its text keeps
        ``lookup(k) == lookup_hash(key_hash(k))``, as for every other table.
        """
        return self._hosts[self._scorer.best((h & MASK64).to_bytes(8, "little"))]

    def preference(self, key: str, n: int) -> tuple[str, ...]:
        """Return the ``n`` top-scoring hosts for ``key``, best first."""
        n = min(check_n(n), len(self._hosts))
        data = key_hash(key).to_bytes(8, "little")
        return tuple(self._hosts[i] for i in self._scorer.ranking(data, n))

    def __repr__(self) -> str:
        return f"RendezvousTable(hosts={len(self._hosts)})"


def complete_order(order: list[int], hosts: tuple[str, ...], h: int, n: int) -> list[int]:
    """Extend a partial preference ``order`` to ``n`` hosts, deterministically.

    Hosts not yet in ``order`` follow in unweighted rendezvous order of the 64-bit key
    hash ``h`` (ties by host key bytes), so failover always reaches every host.
    """
    if len(order) >= n:
        return order[:n]
    seen = set(order)
    data = (h & MASK64).to_bytes(8, "little")
    rest = sorted(
        (i for i in range(len(hosts)) if i not in seen),
        key=lambda i: (-xxh64(data, xxh64(encode(hosts[i]))), encode(hosts[i])),
    )
    return order + rest[: n - len(order)]
