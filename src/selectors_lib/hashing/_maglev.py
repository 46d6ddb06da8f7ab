"""Maglev hashing (Eisenbud et al. 2016), bit-compatible with Envoy's ``maglev`` load balancer."""

from __future__ import annotations

from ._base import check_n
from ._rendezvous import complete_order
from ._xx import MASK64, encode, key_hash, xxh64

__all__ = ["DEFAULT_TABLE_SIZE", "MaglevTable", "is_prime"]

#: Envoy's default, the paper's recommended size (section 5.3).
DEFAULT_TABLE_SIZE = 65537
_MAX_TABLE_SIZE = 5000011


def is_prime(n: int) -> bool:
    """Return whether ``n`` is prime (trial division; table sizes are small)."""
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    f = 3
    while f * f <= n:
        if n % f == 0:
            return False
        f += 2
    return True


class MaglevTable:
    """Envoy's Maglev table: the same cells, so the same host per hash.

    Envoy fills its table from the hosts sorted by hash key (its address string, our
    host key; compared as bytes), offset ``xxHash64(key) % M`` and skip
    ``xxHash64(key, seed=1) % (M - 1) + 1``, visiting a host in round ``i`` only when
    ``i * weight >= target_weight`` and then adding the maximum normalised weight to
    its target. Envoy's "compact" and "original" tables (and its single-host table)
    hold the same assignments; only their memory layout differs.
    """

    __slots__ = ("_counts", "_hosts", "_size", "_table", "_weights")

    def __init__(
        self, hosts: tuple[str, ...], weights: tuple[int, ...], table_size: int = DEFAULT_TABLE_SIZE
    ) -> None:
        if not is_prime(table_size):
            raise ValueError(f"maglev table_size must be a prime number, got {table_size}")
        self._hosts = hosts
        self._weights = weights
        self._size = table_size
        total = sum(weights)
        normalized = [(w * 1.0) / total for w in weights]
        max_w = max([0.0, *normalized])
        order = sorted(range(len(hosts)), key=lambda i: encode(hosts[i]))
        m = table_size
        offsets = []
        skips = []
        for i in order:
            raw = encode(hosts[i])
            offsets.append(xxh64(raw) % m)
            skips.append(xxh64(raw, 1) % (m - 1) + 1)
        entry_weight = [normalized[i] for i in order]
        target = [0.0] * len(order)
        nxt = [0] * len(order)
        counts = [0] * len(order)
        table = [-1] * m
        filled = 0
        iteration = 1
        while filled < m:
            for j in range(len(order)):
                if filled >= m:
                    break
                # Weighted round robin: a host of max weight takes a cell every round.
                if iteration * entry_weight[j] < target[j]:
                    continue
                target[j] += max_w
                offset = offsets[j]
                skip = skips[j]
                k = nxt[j]
                c = (offset + skip * k) % m
                while table[c] >= 0:
                    k += 1
                    c = (offset + skip * k) % m
                table[c] = order[j]
                nxt[j] = k + 1
                counts[j] += 1
                filled += 1
            iteration += 1
        self._table = table
        self._counts = {hosts[order[j]]: counts[j] for j in range(len(order))}

    @property
    def hosts(self) -> tuple[str, ...]:
        """The host keys, in the given order."""
        return self._hosts

    @property
    def weights(self) -> tuple[int, ...]:
        """The host weights, aligned with :attr:`hosts`."""
        return self._weights

    @property
    def table_size(self) -> int:
        """The number of cells ``M`` (prime)."""
        return self._size

    def entries_per_host(self) -> dict[str, int]:
        """Cells owned per host (Envoy's min/max ``entries_per_host`` come from these).

        With one host Envoy builds a single-entry table and reports 1; we fill the
        whole table, which selects the same host.
        """
        return dict(self._counts)

    def lookup(self, key: str) -> str:
        """Return the host for ``key``."""
        # key_hash inlined: a Python call is a large share of this method's cost.
        return self._hosts[self._table[xxh64(key.encode("utf-8", "surrogatepass")) % self._size]]

    def lookup_hash(self, h: int) -> str:
        """Return the host in cell ``h % M``."""
        return self._hosts[self._table[(h & MASK64) % self._size]]

    def preference(self, key: str, n: int) -> tuple[str, ...]:
        """Return ``key``'s first ``n`` distinct hosts in Envoy's retry order.

        Attempt ``a >= 1`` looks up ``h ^ (2**64 - a)`` (Envoy's retry-host-predicate
        mutation); repeats are skipped. If ``64 * len(hosts)`` attempts leave hosts
        unvisited, the rest follow in rendezvous order of the key, so every host
        appears.
        """
        n = min(check_n(n), len(self._hosts))
        h = key_hash(key)
        table = self._table
        m = self._size
        order: list[int] = []
        seen: set[int] = set()
        attempt = 0
        limit = 64 * len(self._hosts)
        while len(order) < n and attempt <= limit:
            probe = h if attempt == 0 else h ^ ((MASK64 - attempt + 1) & MASK64)
            owner = table[probe % m]
            if owner not in seen:
                seen.add(owner)
                order.append(owner)
            attempt += 1
        order = complete_order(order, self._hosts, h, n)
        return tuple(self._hosts[o] for o in order)

    def __repr__(self) -> str:
        return f"MaglevTable(hosts={len(self._hosts)}, table_size={self._size})"
