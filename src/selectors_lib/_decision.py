"""What :meth:`Router.explain` returns: the decision, each rule's trace, the pool's pick.

Plain values, kept apart from the router that makes them: adapters, the CLI and
metrics read decisions without needing the routing machinery, and ``select()``,
which builds none of them, does not import this module (docs/scale.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ._criteria import Criteria
from ._pool import Endpoint

if TYPE_CHECKING:
    from ._consistent import Stale

__all__ = ["Decision", "Pick", "RuleTrace"]


@attrs.frozen
class Pick:
    """What a pool chose for one request.

    Args:
        endpoint: The replica chosen.
        key: The routing key, if one was found.
        key_source: The ``hash_on`` source the key came from.
        first_choice: The replica the key maps to when every replica is up.
        skipped: ``(endpoint id, reason)`` for each replica passed over.
        panic: True when too few replicas were up and health was ignored.
    """

    endpoint: Endpoint
    key: str | None = None
    key_source: str | None = None
    first_choice: Endpoint | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    panic: bool = False


@attrs.frozen
class RuleTrace:
    """How one rule fared for one request.

    Args:
        name: The rule.
        priority: Its priority (``None`` for the default).
        matched: Whether its match accepted the request.
        won: Whether it was chosen.
        reason: Why it matched or not, in words.
    """

    name: str
    priority: int | None
    matched: bool
    won: bool
    reason: str


@attrs.frozen
class Decision:
    """Where a request goes and why: what :meth:`Router.explain` returns.

    Args:
        criteria: The request, as routed.
        endpoint: The chosen replica.
        rule: Name of the winning rule.
        priority: Its priority (``None`` when the default won).
        default: True when no rule matched and the default took the request.
        considered: Every rule in the order tried, the default last.
        key: The routing key the pool hashed, if any.
        key_source: Which ``hash_on`` source gave the key.
        first_choice: The replica the key maps to when all are up.
        skipped: ``(endpoint id, reason)`` for each replica passed over.
        panic: True when the pool had too few live replicas and ignored health.
        consistency: For a token request on a rule with a ``consistency:``
            policy: ``replica`` (a replica had the write), ``fallback`` (none
            had: the policy's fallback took it) or ``invalid-token``; else None.
        stale: The replicas passed over for the token, bytes behind and age.
    """

    criteria: Criteria
    endpoint: Endpoint
    rule: str
    priority: int | None
    default: bool
    considered: tuple[RuleTrace, ...]
    key: str | None = None
    key_source: str | None = None
    first_choice: Endpoint | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    panic: bool = False
    consistency: str | None = None
    stale: tuple[Stale, ...] = ()

    @property
    def failover(self) -> bool:
        """True when the key's first choice was down and another replica took it."""
        return self.first_choice is not None and self.first_choice != self.endpoint

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view of the decision."""
        return {
            "endpoint": {"id": self.endpoint.id, "url": self.endpoint.url},
            "rule": self.rule,
            "priority": self.priority,
            "default": self.default,
            "key": self.key,
            "key_source": self.key_source,
            "first_choice": None if self.first_choice is None else self.first_choice.id,
            "failover": self.failover,
            "skipped": [{"endpoint": e, "reason": r} for e, r in self.skipped],
            "panic": self.panic,
            "consistency": self.consistency,
            "stale": [attrs.asdict(s) for s in self.stale],
            "considered": [attrs.asdict(t) for t in self.considered],
            "criteria": _criteria_dict(self.criteria),
        }

    def __str__(self) -> str:
        lines = [f"-> {self.endpoint.id} ({self.endpoint.url}) by rule {self.rule!r}"]
        if self.key is not None:
            # Keys come from requests: show a bounded preview, never the whole value.
            key = self.key if len(self.key) <= 80 else self.key[:80] + "..."
            lines.append(f"   key {key!r} from {self.key_source}")
        for endpoint_id, reason in self.skipped:
            lines.append(f"   skipped {endpoint_id}: {reason}")
        if self.panic:
            lines.append("   pool in panic: too few live replicas, health ignored")
        if self.consistency is not None:
            lines.append(f"   consistency: {self.consistency}")
        for stale in self.stale:
            lines.append(f"   too stale {stale.endpoint}: {stale.reason}")
        for trace in self.considered:
            mark = "*" if trace.won else ("+" if trace.matched else "-")
            prio = "default" if trace.priority is None else f"priority {trace.priority}"
            lines.append(f"   {mark} {trace.name} ({prio}): {trace.reason}")
        return "\n".join(lines)


def _criteria_dict(criteria: Criteria) -> dict[str, Any]:
    data = {k: v for k, v in attrs.asdict(criteria, recurse=False).items() if v is not None}
    data["attributes"] = dict(criteria.attributes)
    if not data["attributes"]:
        del data["attributes"]
    return data
