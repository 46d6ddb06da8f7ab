"""What one decision reads: a router's immutable snapshot and its decision cache.

A snapshot holds a configuration, the health it was built with, one pool
state per rule (ranked as the rule index ranks them) and the decision cache,
the only part that changes after construction (see docs/operations.md,
"Decision cache").
"""

from __future__ import annotations

import collections
import operator
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING

from . import hashing
from ._criteria import FIELDS, Criteria
from ._pool import Endpoint, Pool, PoolState
from ._tables import TableKey, table_key

if TYPE_CHECKING:
    from ._endpoint_health import EndpointHealth
    from ._router import RouterConfig, Rule

__all__ = ["ADMIT_EVERY", "MAX_CACHED_CHARS", "CacheKey", "Snapshot", "key_function"]

#: Criteria holding more characters than this are routed but never cached, so
#: the cache's memory stays bounded (cache_size x this) whatever clients send.
MAX_CACHED_CHARS = 1024


#: A full decision cache stores one miss in this many (see ``Snapshot``).
ADMIT_EVERY = 32

#: The decision cache's key: the values of the criteria fields the
#: configuration reads (see :func:`key_function`). Its shape is fixed per
#: configuration: one value, a tuple of them, or None.
CacheKey = Hashable

# The criteria's attribute items in name order (``()`` for none): equal exactly
# when the mappings are, and a tuple hashes and compares in C, where the
# mapping's own __hash__ and __eq__ are Python calls.
_ATTRIBUTE_ITEMS = "attributes._items"


def _no_key(criteria: Criteria) -> None:
    return None


def key_function(config: RouterConfig) -> Callable[[Criteria], CacheKey]:
    """How the decision cache keys a request under ``config``.

    A decision is a pure function of the criteria fields the configuration
    reads: the rules' match fields, the pools' ``hash_on`` sources (a missing
    key is one of them being empty) and, with a ``consistency:`` policy, the
    token attribute. The key holds exactly those values, in field order, and
    the attribute items whenever any attribute is read: two criteria with the
    same key get the same endpoint, and a key of two strings hashes and
    compares in a fraction of the time of all nine fields (every hit and every
    miss builds one). Token requests keep distinct keys (their attributes
    differ), and are never stored (see :meth:`Router.select`).

    Args:
        config: The configuration the cache serves.

    Returns:
        A C-level getter (``operator.attrgetter``) of the read values: the
        value itself when one field is read, a tuple when several, None
        when none is.
    """
    sources: set[str] = set()
    attributes = False
    for rule in (*config.rules, config.default):
        for source, _ in rule.match.fields:
            sources.add(source)
        sources.update(rule.target.hash_on)
        attributes = attributes or rule.target.consistency is not None
    attributes = attributes or any(s.startswith("attributes.") for s in sources)
    # FIELDS order, whatever the set's: the key's shape is the same in every process.
    names = [f for f in FIELDS if f in sources]
    if attributes:
        names.append(_ATTRIBUTE_ITEMS)
    if not names:
        return _no_key
    return operator.attrgetter(*names)


def _cacheable(c: Criteria) -> bool:
    # Counts every field, read or not: criteria this large are never cached,
    # as documented, whatever the configuration reads.
    size = (
        len(c.application or "")
        + len(c.authenticated_user or "")
        + len(c.execution_type or "")
        + len(c.execution_id or "")
        + len(c.origin or "")
        + len(c.location or "")
        + len(c.account or "")
        + len(c.cloud_provider or "")
    )
    if size > MAX_CACHED_CHARS:
        return False
    items = c.attributes._items
    if items:
        size += sum(len(k) + len(v) for k, v in items)
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
        "key_of",
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
        self.key_of: Callable[[Criteria], CacheKey] = (
            previous.key_of
            if previous is not None and previous.config is config
            else key_function(config)
        )
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

    def remember(self, key: CacheKey, endpoint: Endpoint, rank: int, criteria: Criteria) -> None:
        """Cache a decision, evicting the oldest beyond the size.

        Not cached: huge criteria, and picks that depend on more than the
        criteria (a ``round_robin`` pool's keyless requests).

        Args:
            key: The criteria's key (:attr:`key_of`).
            endpoint: The endpoint chosen.
            rank: The winning rule's rank.
            criteria: The criteria routed.
        """
        cache = self.cache
        # Checked here rather than by select() before every admission count:
        # one test per stored miss instead of one per miss.
        if cache is None or not self.deterministic[rank] or not _cacheable(criteria):
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
