"""Read your own writes: consistency tokens for Redis-replicated services.

After a write, a service asks the primary where its replication stream stands
(:func:`after_write`) and hands the caller a :class:`Token`. The caller sends
it back with its next reads (header ``X-Consistency-Token``, or the criteria
attribute :data:`TOKEN_ATTRIBUTE`), and a router whose rule declares a
``consistency:`` policy sends such a read only to a replica whose last observed
position has reached the token; otherwise to the policy's fallback (the
primary). :func:`select` and :func:`aselect` add the opt-in bounded wait, which
needs I/O the router never does. See docs/consistency.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import attrs

from ._consistent import TOKEN_ATTRIBUTE, ConsistencyPolicy, Position, Stale, Token, TokenPick
from ._criteria import Criteria
from ._errors import SelectorsError
from ._headers import TOKEN_HEADER
from ._pool import Endpoint
from ._router import Router

__all__ = [
    "TOKEN_ATTRIBUTE",
    "TOKEN_COOKIE",
    "TOKEN_HEADER",
    "ConsistencyPolicy",
    "Position",
    "Stale",
    "Token",
    "TokenError",
    "TokenPick",
    "aafter_write",
    "after_write",
    "aselect",
    "atoken_from_url",
    "select",
    "token_from_info",
    "token_from_url",
    "with_token",
]

#: The cookie the gateway sets and reads, when enabled.
TOKEN_COOKIE = "selectors_ct"

# Between two re-checks of a replica during a wait: short, since each re-check
# is one INFO round trip to one server, and the wait is bounded anyway.
_POLL_INTERVAL = 0.002


class TokenError(SelectorsError, ValueError):
    """The primary's ``INFO replication`` holds no usable replication id and offset."""


def token_from_info(info: Mapping[str, Any]) -> Token:
    """The token a primary's parsed ``INFO replication`` stands for.

    Args:
        info: The fields (as redis-py's ``info("replication")`` or the probe's parser give them).

    Raises:
        TokenError: It is not a master's reply, or a field is missing or malformed.
    """
    role = info.get("role")
    replid = info.get("master_replid")
    offset = info.get("master_repl_offset")
    if role != "master":
        raise TokenError(f"not a primary (role {str(role)[:20]!r}): tokens come from the primary")
    if isinstance(offset, str) and offset.isascii() and offset.isdigit() and len(offset) <= 20:
        offset = int(offset)
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 1 << 64:
        raise TokenError("INFO replication has no usable master_repl_offset")
    token = Token.parse(f"1.{replid}.{offset}") if isinstance(replid, str) else None
    if token is None:
        raise TokenError("INFO replication has no usable master_replid")
    return token


def after_write(client: Any) -> Token:
    """The token for everything ``client`` wrote so far (call it once the write returned).

    Args:
        client: A redis-py ``Redis`` connected to the primary.

    Raises:
        TokenError: It is not connected to a primary.
    """
    return token_from_info(client.info("replication"))


async def aafter_write(client: Any) -> Token:
    """Like :func:`after_write`, for ``redis.asyncio.Redis``."""
    return token_from_info(await client.info("replication"))


def token_from_url(url: str, timeout: float = 0.5) -> Token:
    """The primary's current token, read with the probe's bounded RESP client (no extra).

    Args:
        url: The primary's ``redis://`` or ``rediss://`` URL.
        timeout: Total seconds for the exchange.

    Raises:
        TokenError: The server is not a primary or its reply is unusable.
        OSError: It did not answer in time.
    """
    from .health._resp import info_replication, parse_target

    return token_from_info(info_replication(parse_target(url), timeout))


async def atoken_from_url(url: str, timeout: float = 0.5) -> Token:
    """Like :func:`token_from_url`, on the running event loop."""
    from .health._resp import ainfo_replication, parse_target

    return token_from_info(await ainfo_replication(parse_target(url), timeout))


def with_token(criteria: Criteria, token: Token | str) -> Criteria:
    """``criteria`` carrying ``token`` (under :data:`TOKEN_ATTRIBUTE`)."""
    attributes = dict(criteria.attributes)
    attributes[TOKEN_ATTRIBUTE] = str(token)
    return attrs.evolve(criteria, attributes=attributes)


def select(router: Router, criteria: Criteria) -> Endpoint:
    """:meth:`Router.select`, plus the bounded wait of ``on_stale: wait`` policies.

    When no replica has reached the request's token and its rule says
    ``wait``, re-reads only the key's own replica's position (one bounded
    ``INFO replication`` round trip at a time, through the lag probe's RESP
    client and URL) until it catches up or ``wait`` seconds pass, then falls
    back. Blocks the calling thread for at most about ``wait`` seconds.

    Args:
        router: The router.
        criteria: The request's criteria.
    """
    pick = router.token_route(criteria)
    target = _wait_target(router, pick)
    if pick is None:
        return router.select(criteria)
    if target is None:
        return pick.endpoint
    from .health._resp import info_replication

    deadline = time.monotonic() + pick.policy.wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            info = info_replication(target[1], left)
        except Exception:  # an unreadable replica cannot show it caught up
            break
        if _caught_up(info, pick.token):
            return target[0]
        time.sleep(min(_POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
    return pick.policy.fallback


async def aselect(router: Router, criteria: Criteria) -> Endpoint:
    """Like :func:`select`, waiting on the running event loop."""
    pick = router.token_route(criteria)
    target = _wait_target(router, pick)
    if pick is None:
        return router.select(criteria)
    if target is None:
        return pick.endpoint
    from .health._resp import ainfo_replication

    deadline = time.monotonic() + pick.policy.wait
    while (left := deadline - time.monotonic()) > 0:
        try:
            info = await ainfo_replication(target[1], left)
        except Exception:  # an unreadable replica cannot show it caught up
            break
        if _caught_up(info, pick.token):
            return target[0]
        await asyncio.sleep(min(_POLL_INTERVAL, max(0.0, deadline - time.monotonic())))
    return pick.policy.fallback


def _caught_up(info: Mapping[str, str], token: Token) -> bool:
    offset = info.get("slave_repl_offset", "")
    return (
        info.get("master_replid") == token.replid
        and offset.isascii()
        and offset.isdigit()
        and len(offset) <= 20
        and int(offset) >= token.offset
    )


def _wait_target(router: Router, pick: TokenPick | None) -> tuple[Endpoint, Any] | None:
    """The replica to wait for and its parsed Redis URL, if the policy waits and one is known."""
    if pick is None or pick.qualified or pick.waitable is None or pick.policy.on_stale != "wait":
        return None
    from .health._resp import parse_target
    from .health._settings import RedisLagProbeSettings

    health = router.config.health
    for probe in () if health is None else health.probes:
        if isinstance(probe, RedisLagProbeSettings):
            for endpoint_id, url in probe.replicas:
                if endpoint_id == pick.waitable.id:
                    try:
                        return pick.waitable, parse_target(url)
                    except ValueError:
                        return None
    return None
