"""``slots``: the default algorithm, a lazily filled table of rendezvous-owned slots."""

from __future__ import annotations

from array import array

from ._base import check_n
from ._rendezvous import Scorer
from ._xx import MASK64, key_hash, xxh64

__all__ = ["DEFAULT_SLOTS", "SlotsTable"]

#: 2**20 slots: with 100 hosts each owns ~10,486, so the slot-count noise of
#: rendezvous (relative sd sqrt(hosts / slots) = 1%) leaves room in a 5% max/mean
#: budget (2**19 measured 1.0497, too close); one 2-byte cell per slot is 2 MiB.
DEFAULT_SLOTS = 1 << 20
MIN_SLOTS = 1 << 4
MAX_SLOTS = 1 << 24


class SlotsTable:
    """Key -> slot by the top bits of its hash; slot -> host by weighted rendezvous.

    * Lookup: one xxHash64 of the key, a shift and an array read: O(1).
    * Stability: a slot belongs to the host that wins weighted rendezvous over the
      slot's index, so removing a host moves exactly the keys of its slots, and adding
      one moves keys only to the new host (about weight/total of them).
    * Balance: each host owns a Binomial(S, weight/total) number of slots, relative
      sd ``sqrt(hosts / S)``; the slot count is fixed (not derived from the host
      count) so that adding a host never re-slices the key space.
    * Build: O(hosts) -- a slot's owner is computed on first use (O(hosts)) and cached.
      Filling is idempotent (every reader computes the same owner) and a single
      array-cell store, so concurrent readers need no lock.
    """

    __slots__ = ("_cells", "_hosts", "_scorer", "_shift", "_size", "_weights")

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
        # Cell value 0 means "not filled yet"; otherwise host index + 1.
        typecode = "H" if len(hosts) < 0xFFFF else "I"
        self._cells = array(typecode, bytes(array(typecode).itemsize * slots))

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
        """Return the host owning ``slot`` (filling the cell if needed)."""
        cell = self._cells[slot]
        if not cell:
            cell = self._fill(slot)
        return self._hosts[cell - 1]

    def _fill(self, slot: int) -> int:
        cell = self._scorer.best(slot.to_bytes(8, "little")) + 1
        self._cells[slot] = cell
        return cell

    def fill_all(self) -> None:
        """Compute every slot now (O(S * hosts)); lookups are then never slow."""
        cells = self._cells
        for slot in range(self._size):
            if not cells[slot]:
                self._fill(slot)

    def lookup(self, key: str) -> str:
        """Return the host for ``key``."""
        # key_hash inlined: a Python call is a third of this method's cost.
        slot = xxh64(key.encode("utf-8", "surrogatepass")) >> self._shift
        cell = self._cells[slot]
        if not cell:
            cell = self._fill(slot)
        return self._hosts[cell - 1]

    def lookup_hash(self, h: int) -> str:
        """Return the host for the 64-bit hash ``h``."""
        slot = (h & MASK64) >> self._shift
        cell = self._cells[slot]
        if not cell:
            cell = self._fill(slot)
        return self._hosts[cell - 1]

    def preference(self, key: str, n: int) -> tuple[str, ...]:
        """Return the ``n`` best hosts of the rendezvous ranking of ``key``'s slot.

        Keys sharing a slot share a failover order; when a host is removed its keys
        move to exactly the second host of this order.
        """
        n = min(check_n(n), len(self._hosts))
        slot = key_hash(key) >> self._shift
        return tuple(self._hosts[i] for i in self._scorer.ranking(slot.to_bytes(8, "little"), n))

    def __repr__(self) -> str:
        return f"SlotsTable(hosts={len(self._hosts)}, slots={self._size})"
