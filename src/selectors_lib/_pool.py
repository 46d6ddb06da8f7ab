"""Endpoints, replica pools and how a pool picks a replica for a key.

A rule's target is always a :class:`Pool`; a single endpoint is a pool of one.
A pool hashes a routing key onto its replicas with an algorithm from
:mod:`selectors_lib.hashing`. The table is a pure function of the pool's
endpoints and weights and never changes with health: when a replica is down, a
key walks its own deterministic preference order to the first live replica, so
only the down replica's keys move, and they come back when it does.
"""

from __future__ import annotations

import functools
import itertools
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from . import hashing
from ._criteria import Criteria
from ._errors import NoEndpointError
from ._match import getter

if TYPE_CHECKING:
    from ._consistent import ConsistencyPolicy
    from ._decision import Pick
    from ._endpoint_health import EndpointHealth

__all__ = [
    "MISSING_KEY_POLICIES",
    "Endpoint",
    "EndpointHealth",
    "Pick",
    "Pool",
    "PoolState",
]

#: What a pool does when none of its ``hash_on`` sources has a value.
MISSING_KEY_POLICIES: tuple[str, ...] = ("first", "round_robin", "reject")

if not TYPE_CHECKING:  # mypy reads the import above; unknown names stay errors
    # ``Pick`` lives with the other explanations (``_decision``), imported by
    # the first explain(); ``EndpointHealth`` by the first health change:
    # select() builds neither.
    _LAZY = {"EndpointHealth": "._endpoint_health", "Pick": "._decision"}

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return getattr(__import__(__package__ + module, fromlist=(name,)), name)


def _first_pick(*args: Any, **kwargs: Any) -> Pick:
    # Stands in for ``Pick`` until the first explain() imports it and rebinds
    # the name: later calls cost a global lookup, no import.
    global _Pick  # noqa: PLW0603 - a one-time rebinding
    from ._decision import Pick

    _Pick = Pick
    return Pick(*args, **kwargs)


_Pick: Callable[..., Pick] = _first_pick


@attrs.frozen
class Endpoint:
    """One replica (or backend) a request can be sent to.

    Args:
        id: Stable identity: the hash key of the replica, and how health refers to it.
        url: Base URL requests are sent to.
    """

    id: str
    url: str


@attrs.frozen
class Pool:
    """Replicas behind one rule, and how to pick among them.

    Args:
        endpoints: The replicas, in config order (at least one).
        weights: A positive weight per endpoint, same order.
        algorithm: A name from :data:`selectors_lib.hashing.ALGORITHMS`.
        hash_on: Ordered key sources; the first with a non-empty value is the key.
        missing_key: ``first`` (first live replica in config order),
            ``round_robin`` (spread, not sticky) or ``reject`` (raise).
        panic_threshold: If fewer than this share of replicas is up, route to
            all of them as if healthy (Envoy's panic mode).
        options: Extra keyword options for the hashing algorithm.
        consistency: Read-your-writes policy for token requests (see
            docs/consistency.md), if any.
    """

    endpoints: tuple[Endpoint, ...]
    weights: tuple[int, ...] = ()
    algorithm: str = hashing.DEFAULT_ALGORITHM
    hash_on: tuple[str, ...] = ()
    missing_key: str = "first"
    panic_threshold: float = 0.5
    options: tuple[tuple[str, int], ...] = ()
    consistency: ConsistencyPolicy | None = None

    def __attrs_post_init__(self) -> None:
        if not self.weights:
            object.__setattr__(self, "weights", (1,) * len(self.endpoints))

    @functools.cached_property  # read for every pool on every load and health change
    def ids(self) -> tuple[str, ...]:
        """The endpoint ids, in config order."""
        return tuple(e.id for e in self.endpoints)

    def build_table(self) -> hashing.HashTable:
        """Build the hashing table (pure function of endpoints, weights, options).

        Raises:
            ValueError: The algorithm rejects the hosts, weights or options.
        """
        weights = dict(zip(self.ids, self.weights, strict=True))
        uniform = all(w == 1 for w in self.weights)
        return hashing.build(
            self.algorithm,
            self.ids,
            weights=None if uniform else weights,
            **dict(self.options),
        )


# Shared by every pool state without a replica down (at 100k pools, one empty
# dict each was a thousandth of the heap); a read-only view, never written.
_NOTHING_DOWN: Mapping[str, EndpointHealth] = types.MappingProxyType({})

_Getters = tuple[tuple[str, Callable[[Criteria], str | None]], ...]


# Shared by the pools that hash on the same sources (in a large configuration,
# nearly all of them): three tuples fewer per pool.
@functools.lru_cache(maxsize=256)
def _getters(hash_on: tuple[str, ...]) -> _Getters:
    return tuple([(source, getter(source)) for source in hash_on])


class PoolState:
    """A pool together with its table and a view of health: immutable once made.

    Built off the request path (at load, on a health change) and shared by every
    request of one router snapshot.
    """

    __slots__ = (
        "_by_id",
        "_counter",
        "_getters",
        "_live",
        "_table",
        "down",
        "panic",
        "pool",
    )

    def __init__(
        self,
        pool: Pool,
        table: hashing.HashTable | None,
        health: Mapping[str, EndpointHealth],
    ) -> None:
        self.pool = pool
        self._table = table
        self._by_id = {e.id: e for e in pool.endpoints}
        # A router's first snapshot has no health yet: at 100k pools the
        # shortcuts below are a tenth of Router().
        down = (
            {
                e.id: h
                for e in pool.endpoints
                if (h := health.get(e.id)) is not None and not h.healthy
            }
            if health
            else _NOTHING_DOWN
        )
        self.down: Mapping[str, EndpointHealth] = down
        live = len(pool.endpoints) - len(down)
        # All down always panics: routing somewhere beats routing nowhere.
        self.panic = bool(down) and (live == 0 or live < pool.panic_threshold * len(pool.endpoints))
        self._live = (
            tuple([e for e in pool.endpoints if e.id not in down or self.panic])
            if down
            else pool.endpoints
        )
        self._getters = _getters(pool.hash_on)
        self._counter = itertools.count() if pool.missing_key == "round_robin" else None

    @property
    def deterministic(self) -> bool:
        """Whether a pick depends on the criteria alone (so it may be cached)."""
        return len(self.pool.endpoints) == 1 or self.pool.missing_key != "round_robin"

    def pick(self, criteria: Criteria) -> Endpoint:
        """Choose a replica for ``criteria`` (the fast path of :meth:`explain`)."""
        endpoints = self.pool.endpoints
        if len(endpoints) == 1:
            return endpoints[0]
        for _, get in self._getters:
            key = get(criteria)
            if key:
                break
        else:
            return self._keyless()
        table = self._table
        if table is None:  # only pools of one have no table
            return endpoints[0]
        chosen = self._by_id[table.lookup(key)]
        if not self.down or self.panic or chosen.id not in self.down:
            return chosen
        return self._failover(table, key)

    def explain(self, criteria: Criteria) -> Pick:
        """Choose a replica and record the key, its source and any replica skipped."""
        endpoints = self.pool.endpoints
        if len(endpoints) == 1:
            return _Pick(endpoints[0], first_choice=endpoints[0], panic=self.panic)
        key: str | None = None
        source: str | None = None
        for source_name, get in self._getters:
            value = get(criteria)
            if value:
                key, source = value, source_name
                break
        if key is None:
            return _Pick(self._keyless(), panic=self.panic)
        table = self._table
        if table is None:
            return _Pick(endpoints[0], key, source, endpoints[0], (), self.panic)
        first = self._by_id[table.lookup(key)]
        if not self.down or self.panic or first.id not in self.down:
            return _Pick(first, key, source, first, (), self.panic)
        # One walk of the key's failover order gives the choice and what it skipped.
        skipped: list[tuple[str, str]] = []
        for host in table.preference(key, len(endpoints)):
            if host not in self.down:
                return _Pick(self._by_id[host], key, source, first, tuple(skipped), self.panic)
            skipped.append((host, self._reason(host)))
        # Unreachable: a pool with no live replica is in panic.
        return _Pick(
            self._live[0], key, source, first, tuple(skipped), self.panic
        )  # pragma: no cover

    def failover_order(self, key: str | None) -> tuple[Endpoint, ...]:
        """Every replica in the order a request with ``key`` should try them.

        The key's own preference order (keyless: config order), live replicas
        first, down ones after (a data plane may still try them as a last
        resort). The first live one is what :meth:`pick` chooses for the key.

        Args:
            key: The routing key, or None.
        """
        endpoints = self.pool.endpoints
        table = self._table
        if key is None or table is None or len(endpoints) == 1:
            ordered: tuple[Endpoint, ...] = endpoints
        else:
            ordered = tuple(self._by_id[h] for h in table.preference(key, len(endpoints)))
        if not self.down or self.panic:
            return ordered
        live = tuple(e for e in ordered if e.id not in self.down)
        return live + tuple(e for e in ordered if e.id in self.down)

    def _reason(self, endpoint_id: str) -> str:
        health = self.down[endpoint_id]
        detail = f": {health.detail}" if health.detail else ""
        return f"down ({health.reason}{detail})"

    def _failover(self, table: hashing.HashTable, key: str) -> Endpoint:
        for host in table.preference(key, len(self.pool.endpoints)):
            if host not in self.down:
                return self._by_id[host]
        # Unreachable: a pool with no live replica is in panic.
        return self._live[0]  # pragma: no cover

    def _keyless(self) -> Endpoint:
        policy = self.pool.missing_key
        if policy == "first":
            return self._live[0]
        if policy == "round_robin":
            assert self._counter is not None  # made for round_robin pools
            return self._live[next(self._counter) % len(self._live)]
        if not self.pool.hash_on:
            raise NoEndpointError("no routing key: the pool has no hash_on sources")
        raise NoEndpointError(
            "no routing key: none of " + ", ".join(self.pool.hash_on) + " has a value"
        )
