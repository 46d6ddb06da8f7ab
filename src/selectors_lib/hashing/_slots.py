"""``slots``: the default algorithm, rendezvous-owned slots computed or cached per pool size."""

from __future__ import annotations

from array import array

from ._base import check_n
from ._rendezvous import Scorer
from ._xx import MASK64, key_hash, xxh64

__all__ = [
    "COMPUTE_MAX_HOSTS",
    "DEFAULT_SLOTS",
    "CachedSlotsTable",
    "ComputedSlotsTable",
    "SlotsTable",
    "cell_typecode",
    "slots_table",
]

#: 2**20 slots: with 100 hosts each owns ~10,486, so the slot-count noise of
#: rendezvous (relative sd sqrt(hosts / slots) = 1%) leaves room in a 5% max/mean
#: budget (2**19 measured 1.0497, too close).
DEFAULT_SLOTS = 1 << 20
MIN_SLOTS = 1 << 4
MAX_SLOTS = 1 << 24

#: Pools of at most this many hosts score their hosts on every lookup and cache
#: nothing: at 8 hosts that costs about as much as uhashring's lookup and keeps the
#: table at about a KiB, where a cache of the 2**20 slots (which random keys touch
#: evenly) would grow to 1 MiB under traffic.
COMPUTE_MAX_HOSTS = 8

# Read-only zeros standing in for a cached table's cells until its first fill, shared
# by every table with the same slot count: a calloc'd bytes object, so pages nobody
# has written cost no RSS. Indexing it answers 0 ("not computed") at any cell width.
_ZEROS: dict[int, bytes] = {}


def cell_typecode(hosts: int) -> str:
    """Return the narrowest ``array`` typecode that holds ``host index + 1`` (0 = not filled).

    Args:
        hosts: The number of hosts in the table.

    Returns:
        ``"B"`` (1 byte) below 255 hosts, ``"H"`` below 65,535, else ``"I"``.
    """
    if hosts < 0xFF:
        return "B"
    if hosts < 0xFFFF:
        return "H"
    return "I"


class SlotsTable:
    """Key -> slot by the top bits of its hash; slot -> host by weighted rendezvous.

    * Lookup: one xxHash64 of the key, a shift, then the slot's owner.
    * Stability: a slot belongs to the host that wins weighted rendezvous over the
      slot's index, so removing a host moves exactly the keys of its slots, and adding
      one moves keys only to the new host (about weight/total of them).
    * Balance: each host owns a Binomial(S, weight/total) number of slots, relative
      sd ``sqrt(hosts / S)``; the slot count is fixed (not derived from the host
      count) so that adding a host never re-slices the key space.
    * The owner is a pure function of (hosts, weights, slot). How it is obtained
      depends on the pool size (see :func:`slots_table`): computed on every lookup
      (:class:`ComputedSlotsTable`) or computed once and cached
      (:class:`CachedSlotsTable`); both answer identically.
    """

    __slots__ = ("_hosts", "_scorer", "_shift", "_size", "_weights")

    def __init__(
        self, hosts: tuple[str, ...], weights: tuple[int, ...], slots: int = DEFAULT_SLOTS
    ) -> None:
        if slots & (slots - 1):
            raise ValueError(f"option slots must be a power of two, got {slots}")
        self._hosts = hosts
        self._weights = weights
        self._scorer = Scorer(hosts, weights)
        self._size = slots
        self._shift = 64 - (slots.bit_length() - 1)

    @property
    def hosts(self) -> tuple[str, ...]:
        """The host keys, in the given order."""
        return self._hosts

    @property
    def weights(self) -> tuple[int, ...]:
        """The host weights, aligned with :attr:`hosts`."""
        return self._weights

    @property
    def slot_count(self) -> int:
        """The number of slots ``S`` (a power of two)."""
        return self._size

    def slot_of(self, h: int) -> int:
        """Return the slot of 64-bit hash ``h``: its top ``log2(S)`` bits (``h * S >> 64``)."""
        return (h & MASK64) >> self._shift

    def owner(self, slot: int) -> str:
        """Return the host owning ``slot``."""
        return self._hosts[self._scorer.best(slot.to_bytes(8, "little"))]

    def lookup(self, key: str) -> str:
        """Return the host for ``key``."""
        return self.owner(xxh64(key.encode("utf-8", "surrogatepass")) >> self._shift)

    def lookup_hash(self, h: int) -> str:
        """Return the host for the 64-bit hash ``h``."""
        return self.owner((h & MASK64) >> self._shift)

    def fill_all(self) -> None:
        """Compute every slot's owner now, where the table caches them (else a no-op)."""

    def preference(self, key: str, n: int) -> tuple[str, ...]:
        """Return the ``n`` best hosts of the rendezvous ranking of ``key``'s slot.

        Keys sharing a slot share a failover order; when a host is removed its keys
        move to exactly the second host of this order.
        """
        n = min(check_n(n), len(self._hosts))
        slot = key_hash(key) >> self._shift
        return tuple(self._hosts[i] for i in self._scorer.ranking(slot.to_bytes(8, "little"), n))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(hosts={len(self._hosts)}, slots={self._size})"


class ComputedSlotsTable(SlotsTable):
    """A ``slots`` table for small pools: each lookup scores the few hosts; nothing is cached.

    Its size does not depend on the slot count or on traffic (a 3-host table is a few
    hundred bytes), and it holds no mutable state, so threads share it trivially.
    """

    __slots__ = ("_by_rank", "_seeds", "_uniform")

    def __init__(
        self, hosts: tuple[str, ...], weights: tuple[int, ...], slots: int = DEFAULT_SLOTS
    ) -> None:
        super().__init__(hosts, weights, slots)
        scorer = self._scorer
        self._uniform = scorer.uniform
        # The scorer's canonical order (host key bytes) decides ties; mirror it here
        # so the equal-weight loop below needs no call into the scorer.
        self._by_rank = tuple(hosts[i] for i in scorer.canon)
        self._seeds = tuple(scorer.seeds)

    def lookup(self, key: str) -> str:
        """Return the host for ``key``."""
        data = (xxh64(key.encode("utf-8", "surrogatepass")) >> self._shift).to_bytes(8, "little")
        if not self._uniform:
            return self._hosts[self._scorer.best(data)]
        # Scorer.best's equal-weight loop, inlined: calls are most of the cost here.
        seeds = self._seeds
        if len(seeds) == 3:
            # The commonest pool, unrolled (twice as fast as the loop). ">=" keeps the
            # loop's rule: on equal scores the host earlier in canonical order wins.
            a = xxh64(data, seeds[0]) >> 11
            b = xxh64(data, seeds[1]) >> 11
            c = xxh64(data, seeds[2]) >> 11
            if a >= b:
                return self._by_rank[0 if a >= c else 2]
            return self._by_rank[1 if b >= c else 2]
        best = -1
        winner = ""
        for host, seed in zip(self._by_rank, seeds, strict=True):
            v = xxh64(data, seed) >> 11
            if v > best:
                best = v
                winner = host
        return winner


class CachedSlotsTable(SlotsTable):
    """A ``slots`` table for larger pools: owners computed on first use and cached.

    * Cells hold ``host index + 1`` (0 = not computed yet) in the narrowest array type
      (:func:`cell_typecode`): 1 byte per slot below 255 hosts, so at most 1 MiB at
      the default ``S``. The array is allocated by the first lookup; until then the
      table reads shared zeros and holds no cells of its own.
    * Threads: readers take no lock. A cell is either 0 or the true owner, because
      every writer stores the same pure-function value with one aligned item store.
      Two threads may both allocate the array on their first lookups; the array that
      loses, and any cells filled in it, is dropped, which only costs a recomputation
      later. So a concurrent lookup can repeat work but never return a wrong owner.
    """

    __slots__ = ("_cells", "_hosts1", "_typecode")

    def __init__(
        self, hosts: tuple[str, ...], weights: tuple[int, ...], slots: int = DEFAULT_SLOTS
    ) -> None:
        super().__init__(hosts, weights, slots)
        self._typecode = cell_typecode(len(hosts))
        zeros = _ZEROS.get(slots)
        if zeros is None:
            zeros = _ZEROS.setdefault(slots, bytes(slots))
        self._cells: bytes | array[int] = zeros
        # Cell c names _hosts1[c]: the empty string at 0 means "not computed" (host
        # keys are never empty), which saves a subtraction on every lookup.
        self._hosts1 = ("", *hosts)

    def owner(self, slot: int) -> str:
        """Return the host owning ``slot`` (computing and caching it if needed)."""
        host = self._hosts1[self._cells[slot]]
        if host:
            return host
        return self._hosts[self._fill(slot)]

    def _fill(self, slot: int) -> int:
        index = self._scorer.best(slot.to_bytes(8, "little"))
        cells = self._cells
        if isinstance(cells, bytes):
            # Repeating one zero item writes the cells once; building from bytes(n)
            # would also touch a temporary of the same size.
            cells = array(self._typecode, [0]) * self._size
            self._cells = cells
        cells[slot] = index + 1
        return index

    def fill_all(self) -> None:
        """Compute every slot now (O(S * hosts)); lookups are then never slow."""
        for slot in range(self._size):
            self.owner(slot)

    def cached_cells(self) -> int:
        """Return how many cells this table has allocated (0 or ``S``)."""
        cells = self._cells
        return 0 if isinstance(cells, bytes) else len(cells)

    def lookup(self, key: str) -> str:
        """Return the host for ``key``."""
        # owner() inlined: a Python call is a third of this method's cost.
        slot = xxh64(key.encode("utf-8", "surrogatepass")) >> self._shift
        host = self._hosts1[self._cells[slot]]
        if host:
            return host
        return self._hosts[self._fill(slot)]

    def lookup_hash(self, h: int) -> str:
        """Return the host for the 64-bit hash ``h``."""
        return self.owner((h & MASK64) >> self._shift)


def slots_table(
    hosts: tuple[str, ...], weights: tuple[int, ...], slots: int = DEFAULT_SLOTS
) -> SlotsTable:
    """Build the ``slots`` table that suits the pool size.

    Args:
        hosts: Validated host keys.
        weights: Validated weights, aligned with ``hosts``.
        slots: The slot count ``S``, a power of two.

    Returns:
        A :class:`ComputedSlotsTable` for at most :data:`COMPUTE_MAX_HOSTS` hosts,
        else a :class:`CachedSlotsTable`. Both map every key to the same host.
    """
    if len(hosts) <= COMPUTE_MAX_HOSTS:
        return ComputedSlotsTable(hosts, weights, slots)
    return CachedSlotsTable(hosts, weights, slots)
