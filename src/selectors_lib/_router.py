"""Rules, the router, and the decisions it explains.

Semantics, in one place:

1. Rules are tried from the highest ``priority`` down; among equal priorities
   the rule declared first is tried first. The first rule whose match accepts
   the criteria wins.
2. If none matches, the one ``default`` rule wins.
3. The winning rule's pool picks a replica for the request's routing key.

A :class:`Router` serves from an immutable snapshot (configuration, health,
pool tables, decision cache). Reloads and health changes build a new snapshot
off the request path and swap it in with one reference assignment, so
``select()`` never waits for a writer and never sees half of a change.
"""

from __future__ import annotations

import functools
import threading
import time
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from . import hashing
from ._bulk import gc_paused
from ._criteria import TOKEN_ATTRIBUTE, Criteria
from ._hub import EventHub
from ._index import RuleIndex
from ._match import Match
from ._pool import Endpoint, Pool, PoolState
from ._snapshot import Snapshot
from ._tables import TableKey, build_tables

if TYPE_CHECKING:
    from ._consistent import Position, Stale, TokenPick
    from ._decision import Decision, RuleTrace
    from ._endpoint_health import EndpointHealth
    from ._errors import ConfigIssue
    from ._events import SelectEvent

__all__ = ["Decision", "Router", "RouterConfig", "Rule", "RuleTrace", "Settings"]

# Imported on first use, not with the router: explanations (``_decision``),
# events (``_events``) and read-your-writes tokens (``_consistent``) are
# classes select() never builds, and creating them was a third of the
# package's import time. ``Decision`` and ``RuleTrace`` stay importable from
# here through __getattr__.
_LAZY = {"Decision": "._decision", "RuleTrace": "._decision"}

if not TYPE_CHECKING:  # mypy reads the imports above; unknown names stay errors

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        return getattr(__import__(__package__ + module, fromlist=(name,)), name)


def _select_event(*args: Any) -> SelectEvent:
    # Stands in for the class until the first observed select() imports it
    # and rebinds the name: later calls cost a global lookup, no import.
    global _SelectEvent  # noqa: PLW0603 - a one-time rebinding
    from ._events import SelectEvent

    _SelectEvent = SelectEvent
    return SelectEvent(*args)


_SelectEvent: Callable[..., SelectEvent] = _select_event


@attrs.frozen
class Rule:
    """A routing rule.

    Args:
        name: Unique name, shown in decisions and metrics.
        priority: Higher wins; ``None`` only for the default rule.
        match: What a request must look like.
        target: The pool of replicas that serves matching requests.
        default: True for the one rule that takes what no other matches.
    """

    name: str
    priority: int | None
    match: Match
    target: Pool
    default: bool = False


@attrs.frozen
class Settings:
    """Router-wide settings.

    Args:
        cache_size: Decisions cached per snapshot (0 disables the cache).
        regex_engine: ``re`` or ``re2``.
        max_value_length: Request values longer than this never match a pattern.
    """

    cache_size: int = 16384
    regex_engine: str = "re"
    max_value_length: int = 4096


@attrs.frozen
class RouterConfig:
    """A complete, validated configuration.

    Args:
        rules: The non-default rules, in declaration order.
        default: The default rule.
        settings: Router-wide settings.
        health: Health and probe settings (see :mod:`selectors_lib.health`), if any.
        warnings: Problems that do not stop loading (shadowed rules, risky patterns).
        source: Where it was loaded from.
        gateway: Proxy settings (see :mod:`selectors_lib.gateway`), if any.
        tables: Hashing tables the loader already built, by pool (an optimisation:
            a router builds any that are missing; not part of equality).
    """

    rules: tuple[Rule, ...]
    default: Rule
    settings: Settings = Settings()
    health: Any = None
    warnings: tuple[ConfigIssue, ...] = ()
    source: str | None = None
    gateway: Any = None
    tables: Mapping[TableKey, hashing.HashTable] = attrs.field(
        factory=dict, eq=False, repr=False, kw_only=True
    )

    # Cached: a configuration is immutable, and every health change builds a
    # snapshot that asks for these again.
    @functools.cached_property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every distinct endpoint, in order of first appearance."""
        seen: dict[str, Endpoint] = {}
        for rule in (*self.rules, self.default):
            for endpoint in rule.target.endpoints:
                seen.setdefault(endpoint.id, endpoint)
        return tuple(seen.values())

    @functools.cached_property
    def endpoint_ids(self) -> frozenset[str]:
        """The ids of :attr:`endpoints` (for membership tests)."""
        return frozenset(e.id for e in self.endpoints)

    @functools.cached_property
    def ordered_rules(self) -> tuple[Rule, ...]:
        """Non-default rules in the order they are tried."""
        indexed = sorted(enumerate(self.rules), key=lambda p: (-(p[1].priority or 0), p[0]))
        return tuple(rule for _, rule in indexed)

    @functools.cached_property
    def rule_index(self) -> RuleIndex:
        """The compiled index over :attr:`ordered_rules` (built once, on first use)."""
        return RuleIndex(self.ordered_rules)


#: The loader :meth:`Router.reload` reads sources with. The loader module sits
#: above this one (it builds routers) and installs itself here on import, so
#: the router never imports it.
_loader: list[Callable[[Any], RouterConfig]] = []


def install_loader(loader: Callable[[Any], RouterConfig]) -> None:
    """Set the function :meth:`Router.reload` loads configurations with."""
    _loader[:] = [loader]


class Router:
    """Routes requests to endpoints.

    Build one with :func:`selectors_lib.load_router` (from a file or mapping) or
    directly from a :class:`RouterConfig`. Safe to share between threads and
    asyncio tasks: reads take no lock a writer holds.

    Args:
        config: A validated configuration.
    """

    def __init__(self, config: RouterConfig) -> None:
        self.events = EventHub()
        self._write_lock = threading.Lock()
        # Replica positions for token requests: an immutable mapping swapped
        # whole (like a snapshot), apart from snapshots so a position update
        # never empties the decision cache.
        self._positions: Mapping[str, Position] = {}
        with gc_paused():
            self._tables = build_tables(config)
            self._snapshot = Snapshot(config, self._tables, {}, 0)

    # -- reading -----------------------------------------------------------------

    @property
    def config(self) -> RouterConfig:
        """The configuration now serving."""
        return self._snapshot.config

    @property
    def generation(self) -> int:
        """A number that grows with every reload and health change."""
        return self._snapshot.generation

    @property
    def fingerprint(self) -> str:
        """The serving configuration's stable fingerprint (equal across a fleet in sync)."""
        from ._fingerprint import config_fingerprint

        return config_fingerprint(self._snapshot.config)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every distinct endpoint of the serving configuration."""
        return self._snapshot.config.endpoints

    @property
    def health(self) -> Mapping[str, EndpointHealth]:
        """Health of every endpoint of the serving configuration, by id."""
        from ._endpoint_health import EndpointHealth

        snap = self._snapshot
        up = EndpointHealth()
        return {e.id: snap.health.get(e.id, up) for e in snap.config.endpoints}

    def select(self, criteria: Criteria) -> Endpoint:
        """Return the endpoint that serves ``criteria``.

        Args:
            criteria: The request's criteria.

        Returns:
            The chosen endpoint.

        Raises:
            NoEndpointError: The winning pool has no routing key and its
                ``missing_key`` policy is ``reject``.
        """
        snap = self._snapshot
        if self.events.observers:
            return self._select_observed(snap, criteria)
        cache = snap.cache
        if cache is None:
            rank = snap.rank(criteria)
            if snap.policies is not None and snap.policies[rank] is not None:
                token = criteria.attributes.get(TOKEN_ATTRIBUTE)
                if token is not None:
                    return self._token_route(snap, rank, criteria, token)[0]
            return snap.states[rank].pick(criteria)
        key = snap.key_of(criteria)
        endpoint = cache.get(key)
        if endpoint is not None:
            return endpoint
        rank = snap.rank(criteria)
        # A token request on a rule with a policy is never cached (nor stored,
        # so it can never hit): its answer depends on positions, not criteria.
        if (
            snap.policies is not None
            and snap.policies[rank] is not None
            and (token := criteria.attributes.get(TOKEN_ATTRIBUTE)) is not None
        ):
            return self._token_route(snap, rank, criteria, token)[0]
        endpoint = snap.states[rank].pick(criteria)
        skip = snap.skip
        if skip:  # a full cache admits one miss in ADMIT_EVERY (see Snapshot)
            snap.skip = skip - 1
        else:
            snap.remember(key, endpoint, rank, criteria)
        return endpoint

    def _select_observed(self, snap: Snapshot, criteria: Criteria) -> Endpoint:
        start = time.perf_counter()
        rank = snap.rank(criteria)
        rule, state = snap.by_rank[rank]
        token = criteria.attributes.get(TOKEN_ATTRIBUTE)
        if token is not None and rule.target.consistency is not None:
            endpoint = self._token_route(snap, rank, criteria, token)[0]
            # Failover: not where the key goes without a token (a fresher replica, or the fallback).
            failover = endpoint != state.pick(criteria)
        elif state.down and not state.panic:
            pick = state.explain(criteria)
            endpoint, failover = pick.endpoint, pick.first_choice not in (None, pick.endpoint)
        else:
            endpoint, failover = state.pick(criteria), False
        self.events.emit(
            _SelectEvent(rule.name, endpoint.id, failover, state.panic, time.perf_counter() - start)
        )
        return endpoint

    def explain(self, criteria: Criteria) -> Decision:
        """Route ``criteria`` and say why, rule by rule.

        Never cached; every rule is evaluated so the trace is complete.

        Args:
            criteria: The request's criteria.

        Returns:
            The :class:`Decision`.
        """
        from ._decision import Decision, RuleTrace

        snap = self._snapshot
        traces: list[RuleTrace] = []
        winner: tuple[Rule, PoolState] | None = None
        for rule, state in snap.ordered:
            matched, reason = rule.match.explain(criteria)
            won = matched and winner is None
            if won:
                winner = (rule, state)
            elif matched and winner is not None:
                reason += f" (outranked by {winner[0].name!r})"
            traces.append(RuleTrace(rule.name, rule.priority, matched, won, reason))
        default_rule = snap.default_state[0]
        if winner is None:
            winner = snap.default_state
            traces.append(RuleTrace(default_rule.name, None, True, True, "no rule matched"))
        else:
            traces.append(
                RuleTrace(default_rule.name, None, False, False, "not needed: a rule matched")
            )
        rule, state = winner
        pick = state.explain(criteria)
        endpoint, outcome = pick.endpoint, None
        stale: tuple[Stale, ...] = ()
        token = criteria.attributes.get(TOKEN_ATTRIBUTE)
        policy = rule.target.consistency
        if token is not None and policy is not None:
            # A rule has a policy only if the loader built one, which imported these.
            from ._consistent import Token, token_pick

            parsed = Token.parse(token)
            if parsed is None:
                endpoint, outcome = policy.fallback, "invalid-token"
            else:
                tp = token_pick(state, policy, criteria, parsed, self._positions, time.monotonic())
                endpoint, stale = tp.endpoint, tp.stale
                outcome = "replica" if tp.qualified else "fallback"
        return Decision(
            criteria=criteria,
            endpoint=endpoint,
            rule=rule.name,
            priority=rule.priority,
            default=rule.default,
            considered=tuple(traces),
            key=pick.key,
            key_source=pick.key_source,
            first_choice=pick.first_choice,
            skipped=pick.skipped,
            panic=pick.panic,
            consistency=outcome,
            stale=stale,
        )

    # -- read-your-writes ----------------------------------------------------------

    @property
    def positions(self) -> Mapping[str, Position]:
        """The latest replica positions the health monitor reported, by endpoint id."""
        return self._positions

    def set_positions(self, positions: Mapping[str, Position | None]) -> None:
        """Record replica positions (used by health monitors) as one swap.

        Entries for ids not in ``positions`` are kept (they age out by their
        own timestamps). Never empties the decision cache: only token requests
        read positions, and those are never cached.

        Args:
            positions: New positions by endpoint id; None forgets one (a replica
                that stopped answering may come back empty).
        """
        with self._write_lock:
            merged = dict(self._positions)
            for endpoint_id, position in positions.items():
                if position is None:
                    merged.pop(endpoint_id, None)
                else:
                    merged[endpoint_id] = position
            self._positions = types.MappingProxyType(merged)

    def token_route(self, criteria: Criteria) -> TokenPick | None:
        """The token-aware pick for ``criteria``, or None when it is not a token request.

        None when the request carries no token, its rule has no ``consistency:``
        policy, or its token is malformed (then :meth:`select` sends it to the
        fallback). For :func:`selectors_lib.consistency.select`, which may wait.

        Args:
            criteria: The request's criteria.
        """
        token = criteria.attributes.get(TOKEN_ATTRIBUTE)
        if token is None:
            return None
        snap = self._snapshot
        rank = snap.rank(criteria)
        if snap.policies is None or snap.policies[rank] is None:
            return None
        return self._token_route(snap, rank, criteria, token)[1]

    def _token_route(
        self, snap: Snapshot, rank: int, criteria: Criteria, text: str
    ) -> tuple[Endpoint, TokenPick | None]:
        # A rule has a policy only if the loader built one, which imported these.
        from ._consistent import Token, token_pick

        policy = snap.by_rank[rank][0].target.consistency
        assert policy is not None  # callers checked
        token = Token.parse(text)
        if token is None:  # cannot tell what the caller wrote: the primary can
            return policy.fallback, None
        pick = token_pick(
            snap.states[rank], policy, criteria, token, self._positions, time.monotonic()
        )
        return pick.endpoint, pick

    def route(self, criteria: Criteria) -> tuple[Rule, PoolState]:
        """The winning rule and its pool's state in the serving snapshot.

        For data planes that need more than :meth:`select` gives: the pool
        state's ``explain`` names the key, and its ``failover_order`` the
        replicas to try next. Uncached and emits no event.

        Args:
            criteria: The request's criteria.

        Returns:
            ``(rule, pool state)``; the state is immutable.
        """
        return self._snapshot.winner(criteria)

    # -- writing -------------------------------------------------------------------

    def mark_down(
        self, endpoint: Endpoint | str, *, reason: str = "manual", detail: str = ""
    ) -> bool:
        """Eject an endpoint from every pool it is in.

        Only the keys it held move, each along its own deterministic failover
        order; they return on :meth:`mark_up`.

        Args:
            endpoint: The endpoint or its id.
            reason: Why: ``manual``, ``probe``, ``lag``...
            detail: Free text for operators.

        Returns:
            True if this changed its state.
        """
        return self._set_health(endpoint, healthy=False, reason=reason, detail=detail)

    def mark_up(self, endpoint: Endpoint | str, *, detail: str = "") -> bool:
        """Readmit an endpoint. Returns True if this changed its state."""
        return self._set_health(endpoint, healthy=True, reason=None, detail=detail)

    def set_health(self, changes: Mapping[str, EndpointHealth]) -> None:
        """Apply several health changes as one snapshot (used by health monitors).

        Args:
            changes: New health by endpoint id; ids the serving configuration
                does not know (removed by a reload meanwhile) are ignored.
        """
        from ._endpoint_health import EndpointHealth
        from ._events import HealthEvent

        with self._write_lock:
            snap = self._snapshot
            known = snap.config.endpoint_ids
            health = dict(snap.health)
            events = []
            for endpoint_id, new in sorted(changes.items()):
                if endpoint_id not in known:
                    continue
                old = health.get(endpoint_id, EndpointHealth())
                if old.healthy == new.healthy and old.reason == new.reason:
                    continue
                events.append(
                    HealthEvent(endpoint_id, new.healthy, new.reason, new.detail, new.since)
                )
                if new.healthy:
                    health.pop(endpoint_id, None)
                else:
                    health[endpoint_id] = new
            if events:
                self._swap(snap.config, health, frozenset(e.endpoint_id for e in events))
        for event in events:
            self.events.emit(event)

    def _set_health(
        self, endpoint: Endpoint | str, *, healthy: bool, reason: str | None, detail: str
    ) -> bool:
        from ._endpoint_health import EndpointHealth

        endpoint_id = endpoint.id if isinstance(endpoint, Endpoint) else endpoint
        known = self._snapshot.config.endpoint_ids
        if endpoint_id not in known:
            raise KeyError(f"unknown endpoint {endpoint_id!r}")
        before = self.generation
        new = EndpointHealth(healthy, reason, detail, time.time())
        self.set_health({endpoint_id: new})
        return self.generation != before

    def reload(self, source: Any) -> RouterConfig:
        """Load, validate and swap in a new configuration atomically.

        On any error the configuration now serving keeps serving, a failed
        :class:`ReloadEvent` is emitted, and the error is raised.

        Args:
            source: A file path or mapping, as for :func:`selectors_lib.load_router`.

        Returns:
            The new configuration, now serving.

        Raises:
            ConfigError: The new configuration is invalid (every issue, with paths).
        """
        from ._events import ReloadEvent

        name = None if isinstance(source, Mapping) else str(source)
        try:
            if not _loader:
                raise RuntimeError("no configuration loader: import selectors_lib first")
            config = _loader[0](source)
        except Exception as exc:
            self.events.emit(ReloadEvent(False, name, str(exc), time.time()))
            raise
        self.replace_config(config)
        return config

    def replace_config(self, config: RouterConfig) -> None:
        """Serve ``config`` from now on, keeping the health of surviving endpoints.

        The new pool tables are built before the swap; requests in flight finish
        on the snapshot they started with. Emits a successful :class:`ReloadEvent`
        (metrics then forget endpoints the new configuration no longer has).

        Args:
            config: A validated configuration.
        """
        from ._events import ReloadEvent

        with gc_paused():
            tables = build_tables(config)
            known = config.endpoint_ids
            config.rule_index  # noqa: B018 - built here, outside the write lock
            with self._write_lock:
                self._tables = tables
                health = {k: v for k, v in self._snapshot.health.items() if k in known}
                self._swap(config, health)
        self.events.emit(ReloadEvent(True, config.source, None, time.time()))

    def _swap(
        self,
        config: RouterConfig,
        health: Mapping[str, EndpointHealth],
        changed: frozenset[str] | None = None,
    ) -> None:
        # Caller holds the write lock. ``changed``: the endpoint ids whose
        # health changed, when the configuration stays (None: a new one).
        old = self._snapshot
        self._snapshot = Snapshot(
            config,
            self._tables,
            health,
            old.generation + 1,
            None if changed is None else old,
            changed or frozenset(),
        )
