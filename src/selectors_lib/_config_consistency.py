"""Validating a pool's ``consistency:`` section (read-your-writes)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ._consistent import ON_STALE, ConsistencyPolicy
from ._pool import Endpoint
from ._validate import Checker

__all__ = ["consistency_to_dict", "parse_consistency"]

_KEYS = ("fallback", "max_age", "on_stale", "wait")

#: Upper bounds: a position older than an hour is no evidence, and a request
#: held longer than ten seconds is an outage, not a wait.
_MAX_AGE_LIMIT = 3600.0
_WAIT_LIMIT = 10.0

#: Resolves a fallback entry (an endpoint id or ``{id, url}``) as a pool member.
Member = Callable[[object, str], "tuple[Endpoint, int] | None"]


def parse_consistency(
    check: Checker, raw: object, path: str, member: Member
) -> ConsistencyPolicy | None:
    """The policy ``raw`` describes, or None after reporting every problem at ``path``.

    Args:
        check: Collects issues.
        raw: The section as parsed.
        path: Its path (``routes[0].target.consistency``).
        member: Resolves the fallback as a pool member is resolved.
    """
    data = check.mapping(raw, path, _KEYS)
    if data is None:
        return None
    before = len(check.issues)
    fallback: Endpoint | None = None
    if "fallback" not in data:
        check.error(
            path,
            "missing key 'fallback' (where token reads go when no replica has the "
            "write, usually the primary)",
        )
    else:
        resolved = member(data["fallback"], f"{path}.fallback")
        fallback = None if resolved is None else resolved[0]
    default = ConsistencyPolicy(Endpoint("", ""))
    max_age = default.max_age
    if "max_age" in data:
        max_age = (
            check.number(
                data["max_age"],
                f"{path}.max_age",
                0,
                _MAX_AGE_LIMIT,
                exclusive_low=True,
                what="a number of seconds",
            )
            or max_age
        )
    on_stale = check.one_of(data.get("on_stale", "fallback"), f"{path}.on_stale", ON_STALE)
    wait = default.wait
    if "wait" in data:
        wait = (
            check.number(
                data["wait"],
                f"{path}.wait",
                0,
                _WAIT_LIMIT,
                exclusive_low=True,
                what="a number of seconds",
            )
            or wait
        )
        if on_stale == "fallback":
            check.error(f"{path}.wait", "only used with on_stale: wait")
    if len(check.issues) > before or fallback is None or on_stale is None:
        return None
    return ConsistencyPolicy(fallback, max_age, on_stale, wait)


def consistency_to_dict(policy: ConsistencyPolicy) -> dict[str, Any]:
    """The canonical form of ``policy`` (loadable again)."""
    out: Mapping[str, Any] = {
        "fallback": {"id": policy.fallback.id, "url": policy.fallback.url},
        "max_age": policy.max_age,
        "on_stale": policy.on_stale,
    }
    out = dict(out)
    if policy.on_stale == "wait":
        out["wait"] = policy.wait
    return out
