"""The straightforward ``slots`` table, kept verbatim as the oracle for the optimised one.

This is the implementation the library shipped before pools became cheap: one full
2-byte cell per slot, filled on first use by scoring every host with the original
weighted-rendezvous scorer (a linear loop for equal weights, a full sort otherwise).
Every optimisation of ``selectors_lib.hashing._slots`` must answer exactly as this does.
"""

from __future__ import annotations

import decimal
import math
from array import array

from selectors_lib.hashing._xx import MASK64, encode, key_hash, xxh64

_TWO_POW_53 = 9007199254740992.0
_NEAR = 1e-9
_EXACT = decimal.Context(prec=60)


def _exact_score(top53: int, weight: int) -> decimal.Decimal:
    u = _EXACT.divide(decimal.Decimal(2 * top53 + 1), decimal.Decimal(2**54))
    return _EXACT.divide(decimal.Decimal(weight), -_EXACT.ln(u))


class OracleScorer:
    """The original ``Scorer``: every host scored, ties to the host key sorting first."""

    def __init__(self, hosts: tuple[str, ...], weights: tuple[int, ...]) -> None:
        canon = sorted(range(len(hosts)), key=lambda i: encode(hosts[i]))
        self._canon = canon
        self._seeds = [xxh64(encode(hosts[i])) for i in canon]
        self._weights = [float(weights[i]) for i in canon]
        self._uniform = len(set(weights)) == 1

    def best(self, data: bytes) -> int:
        seeds = self._seeds
        if self._uniform:
            best = -1
            best_j = 0
            for j, seed in enumerate(seeds):
                v = xxh64(data, seed) >> 11
                if v > best:
                    best = v
                    best_j = j
            return self._canon[best_j]
        return self.ranking(data, 1)[0]

    def ranking(self, data: bytes, n: int) -> list[int]:
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


class OracleSlotsTable:
    """The original ``SlotsTable``: a zeroed cell per slot, filled on first lookup."""

    def __init__(self, hosts: tuple[str, ...], weights: tuple[int, ...], slots: int) -> None:
        self.hosts = hosts
        self._scorer = OracleScorer(hosts, weights)
        self._shift = 64 - (slots.bit_length() - 1)
        typecode = "H" if len(hosts) < 0xFFFF else "I"
        self._cells = array(typecode, bytes(array(typecode).itemsize * slots))

    def owner(self, slot: int) -> str:
        cell = self._cells[slot]
        if not cell:
            cell = self._scorer.best(slot.to_bytes(8, "little")) + 1
            self._cells[slot] = cell
        return self.hosts[cell - 1]

    def lookup(self, key: str) -> str:
        return self.lookup_hash(key_hash(key))

    def lookup_hash(self, h: int) -> str:
        return self.owner((h & MASK64) >> self._shift)

    def preference(self, key: str, n: int) -> tuple[str, ...]:
        n = min(n, len(self.hosts))
        slot = key_hash(key) >> self._shift
        return tuple(self.hosts[i] for i in self._scorer.ranking(slot.to_bytes(8, "little"), n))
