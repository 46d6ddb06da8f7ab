"""Routing for the data plane: criteria, rule, replica, and the key's next replicas.

Building criteria and walking the rules cost more than the rest of the
proxy's own work per request; requests of one user repeat the same few header
values, so decisions are kept per distinct value set (bounded, oldest out) and
reused while the router's snapshot (its generation) is the same.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import attrs

from selectors_lib._consistent import TOKEN_ATTRIBUTE
from selectors_lib._criteria import Criteria
from selectors_lib._headers import USER_HEADER, HeaderMapping
from selectors_lib._pool import Endpoint, Pick, PoolState
from selectors_lib._router import Router, Rule

__all__ = ["Decisions"]

Scope = MutableMapping[str, Any]
# Routing decisions kept, by the header values routing reads (and the user).
_DECISIONS = 4096
_DECISION_BYTES = 1024


def _small(pairs: tuple[tuple[bytes, bytes], ...]) -> bool:
    # Only keys of ordinary size are cached: the cache's memory stays bounded
    # whatever clients send.
    return sum(len(value) for _, value in pairs) <= _DECISION_BYTES


class Decisions:
    """Routing decisions of one proxy, cached by the header values routing reads.

    Lives on the proxy's event loop (not thread-safe).

    Args:
        router: The router.
        mapping: How headers become criteria.
    """

    def __init__(self, router: Router, mapping: HeaderMapping) -> None:
        self.router = router
        self.mapping = mapping
        wanted = {h for h, _ in mapping.fields} | set(mapping.attributes)
        wanted |= {USER_HEADER, "x-ratelimit-app", *mapping.token_headers}
        # Only the headers the mapping reads are decoded for routing.
        self._wanted = frozenset(h.lower().encode("latin-1") for h in wanted)
        self._cache: dict[tuple[Any, ...], tuple[int, Criteria, Rule, PoolState, Pick]] = {}

    def decide(self, scope: Scope, user: str | None) -> tuple[Criteria, Rule, PoolState, Pick]:
        """Criteria, rule, pool state and pick: cached by the headers routing reads.

        Building criteria and walking the rules cost more than the rest of
        the proxy's own work; requests of one user repeat the same few header
        values, so both are kept per distinct value set (bounded, oldest out)
        and the pick is reused while the router's snapshot is the same.

        Raises:
            NoEndpointError: The winning pool rejects requests without a key.
        """
        wanted = self._wanted
        pairs = tuple([(n, v) for n, v in scope.get("headers") or () if n.lower() in wanted])
        cache_key = (user, pairs)
        generation = self.router.generation
        cache = self._cache
        hit = cache.get(cache_key)
        if hit is not None:
            if hit[0] == generation:
                return hit[1], hit[2], hit[3], hit[4]
            criteria = hit[1]
        else:
            criteria = self.mapping.criteria(pairs, user=user)
        rule, state = self.router.route(criteria)
        pick = state.explain(criteria)
        if rule.target.consistency is not None and TOKEN_ATTRIBUTE in criteria.attributes:
            # Token requests: positions decide, not headers; never cached.
            endpoint = self.router.select(criteria)
            return criteria, rule, state, attrs.evolve(pick, endpoint=endpoint)
        if state.deterministic and _small(pairs):
            if hit is None and len(cache) >= _DECISIONS:
                del cache[next(iter(cache))]
            cache[cache_key] = (generation, criteria, rule, state, pick)
        return criteria, rule, state, pick

    def next_replica(
        self, criteria: Criteria, key: str | None, tried: list[str]
    ) -> Endpoint | None:
        """The key's next replica not tried yet (health as of now), or None.

        A token request retries only on its policy's fallback: another replica
        may not have the caller's write.
        """
        # Health as of now: a replica ejected since the first try goes last.
        rule, state = self.router.route(criteria)
        policy = rule.target.consistency
        if policy is not None and TOKEN_ATTRIBUTE in criteria.attributes:
            return None if policy.fallback.id in tried else policy.fallback
        for candidate in state.failover_order(key):
            if candidate.id not in tried:
                return candidate
        return None
