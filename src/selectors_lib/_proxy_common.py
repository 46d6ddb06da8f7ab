"""Pieces every HTTP adapter shares: deciding, hop-by-hop headers, safe header values.

Private: :mod:`selectors_lib.asgi`, :mod:`selectors_lib.wsgi` and
:mod:`selectors_lib.httpx` build on it. Imports no HTTP framework.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterable, MutableMapping
from typing import Any

from ._criteria import Criteria
from ._events import SelectEvent
from ._pool import Endpoint
from ._router import Decision, Router

__all__ = [
    "CRITERIA_KEY",
    "DECISION_KEY",
    "ENDPOINT_KEY",
    "HOP_BY_HOP",
    "canonical_name",
    "connection_tokens",
    "debug_value",
    "decide",
    "has_dot_segment",
    "publish",
    "strip_hop_by_hop",
    "user_name",
]

#: Where adapters publish their results (ASGI ``scope["state"]``, WSGI ``environ``,
#: httpx ``request.extensions``).
DECISION_KEY = "selectors_lib.decision"
ENDPOINT_KEY = "selectors_lib.endpoint"
CRITERIA_KEY = "selectors_lib.criteria"

#: Hop-by-hop fields (RFC 9110 section 7.6.1, plus the RFC 2616 ones proxies
#: still meet): they describe one connection and must not be forwarded.
#: ``trailer`` is here because bodies are re-framed hop by hop and httpx
#: forwards no trailers: announcing trailers that never come would be wrong.
HOP_BY_HOP: frozenset[str] = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def decide(
    router: Router, criteria: Criteria, *, explain: bool
) -> tuple[Endpoint, Decision | None]:
    """Route ``criteria``, with the full :class:`Decision` when ``explain`` is set.

    ``Router.explain`` emits no event of its own; when observers listen, a
    :class:`SelectEvent` is emitted here so metrics count explained requests too.

    Args:
        router: The router.
        criteria: The request's criteria.
        explain: Compute the full decision (uncached; every rule evaluated).

    Returns:
        The endpoint, and the decision when ``explain`` is set (else ``None``).

    Raises:
        NoEndpointError: The winning pool rejects requests without a key.
    """
    if not explain:
        return router.select(criteria), None
    start = time.perf_counter()
    decision = router.explain(criteria)
    if router.events.observers:
        router.events.emit(
            SelectEvent(
                decision.rule,
                decision.endpoint.id,
                decision.failover,
                decision.panic,
                time.perf_counter() - start,
            )
        )
    return decision.endpoint, decision


def connection_tokens(values: Iterable[str]) -> frozenset[str]:
    """The lowercased option names listed in ``Connection`` header values.

    Every token counts (RFC 9110 section 7.6.1 sets no limit, and a proxy that
    stops at some count forwards the rest); the work stays linear in the size
    of the headers, which the server already bounds.

    Args:
        values: Every ``Connection`` header value of a message.

    Returns:
        The names.
    """
    return frozenset(
        token for value in values for part in value.split(",") if (token := part.strip().lower())
    )


def strip_hop_by_hop(
    headers: Iterable[tuple[str, str]], *, drop: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """Remove hop-by-hop fields, including those the ``Connection`` header names.

    Args:
        headers: ``(name, value)`` pairs in order (duplicates allowed).
        drop: Further lowercased names to remove (e.g. ``host``).

    Returns:
        The remaining pairs, in their original order.
    """
    pairs = list(headers)
    named = connection_tokens(v for n, v in pairs if n.lower() == "connection")
    remove = HOP_BY_HOP | named | frozenset(drop)
    return [(n, v) for n, v in pairs if n.lower() not in remove]


def canonical_name(name: str) -> str:
    """A header name as backends may read it: lowercased, ``_`` taken as ``-``.

    WSGI servers (and CGI) turn both ``X-Spinnaker-User`` and
    ``X_Spinnaker_User`` into ``HTTP_X_SPINNAKER_USER``, so a proxy that strips
    a header must compare names in this form or the other spelling slips past.

    Args:
        name: A header name.
    """
    return name.lower().replace("_", "-")


def has_dot_segment(raw_path: bytes) -> bool:
    """Whether a raw URL path holds a ``.`` or ``..`` segment, in any spelling a server may resolve.

    The path is percent-decoded once (``%2e``, ``%2E``, and ``%2F``/``%5C``,
    which some backends decode before they resolve), split on ``/`` and
    ``\\``, and each segment's ``;parameters`` dropped (Tomcat reads
    ``..;x`` as ``..``). A proxy that puts a base path in front of such a path
    could otherwise be walked out of the base path, by its HTTP client (httpx
    resolves literal dot segments) or by the backend.

    Args:
        raw_path: The path, without the query string.

    Returns:
        True when any segment is ``.`` or ``..``.
    """
    decoded = urllib.parse.unquote_to_bytes(raw_path).replace(b"\\", b"/")
    for segment in decoded.split(b"/"):
        name = segment.partition(b";")[0]
        if name in (b".", b".."):
            return True
    return False


def user_name(user: object) -> str | None:
    """The name of an authenticated user as frameworks represent it.

    Accepts a string, or a Starlette-style user object: an object whose
    ``is_authenticated`` is false gives ``None``; otherwise the first non-empty
    of ``username``, ``identity`` and ``display_name`` (attributes that raise,
    as Starlette's ``BaseUser.identity`` does, are skipped).

    Args:
        user: The framework's user (``scope["user"]``), or ``None``.

    Returns:
        The user name, or ``None`` when there is no authenticated user.
    """
    if user is None:
        return None
    if isinstance(user, str):
        return user or None
    try:
        if getattr(user, "is_authenticated", True) is False:
            return None
    except Exception:  # a broken user object must not break routing
        return None
    for attribute in ("username", "identity", "display_name"):
        try:
            value = getattr(user, attribute, None)
        except Exception:  # NotImplementedError from BaseUser, and the like
            continue
        if isinstance(value, str) and value:
            return value
    return None


_SAFE = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"%", ";", "="}


def _quote(text: str, limit: int = 200) -> str:
    # Rule names and endpoint ids come from configuration and may hold any
    # character; a raw CR/LF in a header would be rejected by the server (or
    # worse). Percent-encode everything outside visible ASCII.
    out = []
    for ch in text[:limit]:
        if ch in _SAFE:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8"))
    return "".join(out)


def debug_value(endpoint: Endpoint, decision: Decision | None) -> str:
    """The value of the optional debugging response header.

    ``rule=<rule>; endpoint=<id>`` (rule omitted when not explained); names are
    percent-encoded outside visible ASCII so the value is always a valid header.
    """
    parts = []
    if decision is not None:
        parts.append(f"rule={_quote(decision.rule)}")
    parts.append(f"endpoint={_quote(endpoint.id)}")
    return "; ".join(parts)


def publish(
    scope: MutableMapping[str, Any],
    criteria: Criteria,
    endpoint: Endpoint,
    decision: Decision | None,
) -> None:
    """Leave the request's routing in ``scope["state"]`` for the app (ASGI adapters).

    Args:
        scope: The ASGI scope.
        criteria: What the request was routed on.
        endpoint: Where it goes.
        decision: The explanation, when the adapter was asked for one.
    """
    # The ASGI spec gives each request a shallow copy of the lifespan state,
    # so writing into it is per-request (and what Starlette's request.state reads).
    state = scope.get("state")
    # The exact-type test first: an ABC isinstance costs a Python call per request.
    if type(state) is not dict and not isinstance(state, MutableMapping):
        state = {}
        scope["state"] = state
    state[CRITERIA_KEY] = criteria
    state[ENDPOINT_KEY] = endpoint
    state[DECISION_KEY] = decision
