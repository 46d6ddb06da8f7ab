"""What one decision reads: a router's immutable snapshot and its decision cache.

A snapshot holds a configuration, the health it was built with, one pool
state per rule (ranked as the rule index ranks them) and the decision cache,
the only part that changes after construction (see docs/operations.md,
"Decision cache").
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from . import hashing
from ._criteria import _EMPTY, Attributes, Criteria
from ._pool import Endpoint, Pool, PoolState
from ._tables import TableKey, table_key

if TYPE_CHECKING:
    from ._endpoint_health import EndpointHealth
    from ._router import RouterConfig, Rule

__all__ = ["ADMIT_EVERY", "MAX_CACHED_CHARS", "CacheKey", "Snapshot", "cache_key"]

#: Criteria holding more characters than this are routed but never cached, so
#: the cache's memory stays bounded (cache_size x this) whatever clients send.
MAX_CACHED_CHARS = 1024


#: A full decision cache stores one miss in this many (see ``Snapshot``).
ADMIT_EVERY = 32

#: The decision cache's key: a criteria's values, in field order.
CacheKey = tuple[
    str | None,
    str | None,
    str | None,
    str | None,
    str | None,
    str | None,
    str | None,
    str | None,
    Attributes | None,
]


def cache_key(c: Criteria) -> CacheKey:
    """The decision cache's key for ``c`` (what :meth:`Router.select` builds inline).

    A plain tuple of the values rather than ``c`` itself: a request's criteria
    are new objects, and hashing a tuple (C code, over strings that cache their
    own hashes) costs a fraction of the attrs-generated cached hash of a new
    ``Criteria``, on every hit and every miss. No attributes (the shared empty
    mapping) are ``None``, so the common key is hashed without a Python call.
    """
    a = c.attributes
    return (
        c.application,
        c.authenticated_user,
        c.execution_type,
        c.execution_id,
        c.origin,
        c.location,
        c.account,
        c.cloud_provider,
        None if a is _EMPTY else a,
    )


def _cacheable(key: CacheKey) -> bool:
    a, b, c, d, e, f, g, h, attributes = key
    size = (
        len(a or "")
        + len(b or "")
        + len(c or "")
        + len(d or "")
        + len(e or "")
        + len(f or "")
        + len(g or "")
        + len(h or "")
    )
    if attributes:
        size += sum(len(k) + len(v) for k, v in attributes.items())
    return size <= MAX_CACHED_CHARS


class Snapshot:
    """Everything one decision reads; never mutated after construction (but the cache)."""

    __slots__ = (
        "_cache_order",
        "_cache_size",
        "by_rank",
        "cache",
        "config",
        "default_state",
        "deterministic",
        "generation",
        "health",
        "ordered",
        "policies",
        "rank",
        "skip",
        "states",
    )

    def __init__(
        self,
        config: RouterConfig,
        tables: Mapping[TableKey, hashing.HashTable],
        health: Mapping[str, EndpointHealth],
        generation: int,
        previous: Snapshot | None = None,
        changed: frozenset[str] = frozenset(),
    ) -> None:
        self.config = config
        self.health = health
        self.generation = generation

        def state(pool: Pool, old: PoolState | None) -> PoolState:
            # A health change rebuilds only the pools holding a changed
            # endpoint: at 100k rules the rest are reused as they are.
            if old is not None and not any(e.id in changed for e in pool.endpoints):
                return old
            return PoolState(pool, tables.get(table_key(pool)), health)

        rules = config.ordered_rules
        if previous is not None and previous.config is config:
            olds: tuple[PoolState | None, ...] = tuple(st for _, st in previous.by_rank)
        else:
            olds = (None,) * (len(rules) + 1)
        self.ordered = tuple(
            (rule, state(rule.target, old)) for rule, old in zip(rules, olds, strict=False)
        )
        self.default_state = (config.default, state(config.default.target, olds[-1]))
        # The index (built once per configuration) gives a rank; the rank past
        # the last rule is the default.
        self.by_rank: tuple[tuple[Rule, PoolState], ...] = (*self.ordered, self.default_state)
        self.states = tuple(st for _, st in self.by_rank)
        self.deterministic = tuple(st.deterministic for st in self.states)
        # Read-your-writes policies by rank; None when no rule has one, so the
        # token check on a cache miss is one attribute test.
        policies = tuple(st.pool.consistency for st in self.states)
        self.policies = policies if any(p is not None for p in policies) else None
        self.rank: Callable[[Criteria], int] = config.rule_index.winner
        size = config.settings.cache_size
        # A plain dict read with one get(): a hit is one lookup, a miss costs
        # one failed lookup and no exception. Inserts append the key to a deque
        # and evict the oldest beyond ``size`` (FIFO, so a hit never writes).
        # No lock anywhere: each dict/deque operation is atomic, and racing
        # inserts can only evict early, never let the dict outgrow the deque
        # (every key in the dict has an entry in the deque). See
        # docs/operations.md for the measurements behind this choice.
        #
        # Once the cache is full, only one miss in ADMIT_EVERY is stored: an
        # insert and the eviction it causes cost about a third of an uncached
        # select, and under a stream of new criteria nearly every store is
        # evicted unread. Criteria that repeat are stored after a few misses
        # and then hit; ``skip`` counts the misses to let pass (racing threads
        # may admit one more or one fewer, which changes no answer).
        self.cache: dict[CacheKey, Endpoint] | None = {} if size > 0 else None
        self._cache_order: collections.deque[CacheKey] = collections.deque()
        self._cache_size = size
        self.skip = 0

    def winner(self, criteria: Criteria) -> tuple[Rule, PoolState]:
        return self.by_rank[self.rank(criteria)]

    def remember(self, key: CacheKey, endpoint: Endpoint) -> None:
        """Cache a decision (unless its criteria are huge), evicting the oldest beyond the size."""
        cache = self.cache
        if cache is None:
            return
        # _cacheable(key), inline: this runs on every store of a full cache.
        a, b, c, d, e, f, g, h, attributes = key
        size = (
            len(a or "")
            + len(b or "")
            + len(c or "")
            + len(d or "")
            + len(e or "")
            + len(f or "")
            + len(g or "")
            + len(h or "")
        )
        if size > MAX_CACHED_CHARS or (attributes and not _cacheable(key)):
            return
        order = self._cache_order
        cache[key] = endpoint
        order.append(key)
        if len(order) > self._cache_size:
            self.skip = ADMIT_EVERY - 1
            while len(order) > self._cache_size:
                try:
                    cache.pop(order.popleft(), None)
                except IndexError:  # another thread emptied it first
                    break
