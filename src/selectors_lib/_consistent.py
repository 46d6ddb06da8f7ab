"""Read-your-writes in the core: tokens, replica positions and token-aware picks.

Pure and I/O-free. A :class:`Token` names a point in one replication history
(the primary's replication id and offset once a write completed); a
:class:`Position` is what the lag probe last saw of a replica (the history it
follows, how far it has processed, and when). A replica may serve a token
request when its position is fresh, follows the token's history and has
reached the token's offset. Offsets of two histories never compare: a token
from another replication id qualifies no replica.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

import attrs

from ._criteria import TOKEN_ATTRIBUTE, Criteria
from ._pool import Endpoint, PoolState

__all__ = [
    "ON_STALE",
    "TOKEN_ATTRIBUTE",
    "ConsistencyPolicy",
    "Position",
    "Stale",
    "Token",
    "TokenPick",
    "token_pick",
]

#: What a rule does when no replica has reached a request's token.
ON_STALE: tuple[str, ...] = ("fallback", "wait")

# "1." + 40 hex (Redis replid) + "." + 1-20 digits; the version prefix lets the
# form change without old tokens being misread. Checked on a bounded length
# first, so a hostile value costs nothing before the regex sees it.
_TOKEN = re.compile(r"1\.([0-9a-f]{40})\.([0-9]{1,20})")
_MAX_TOKEN_CHARS = 64


@attrs.frozen
class Token:
    """A point in one replication history: where the caller's last write landed.

    Args:
        replid: The primary's replication id (40 hex characters for Redis).
        offset: The primary's replication offset once the write completed.
    """

    replid: str
    offset: int

    def __str__(self) -> str:
        return f"1.{self.replid}.{self.offset}"

    @classmethod
    def parse(cls, text: object) -> Token | None:
        """The token ``text`` holds, or None when it is not a well-formed token.

        Never raises and never costs more than a bounded amount of work, whatever
        ``text`` is (it usually comes from a client's header or cookie).

        Args:
            text: The compact form (``str(token)``).
        """
        if not isinstance(text, str) or len(text) > _MAX_TOKEN_CHARS:
            return None
        return _parse(text)


# A client sends the same token with several reads: parsing is cached (the
# length check above bounds each entry, maxsize the whole).
@functools.lru_cache(maxsize=4096)
def _parse(text: str) -> Token | None:
    found = _TOKEN.fullmatch(text)
    if found is None:
        return None
    offset = int(found.group(2))
    if offset >= 1 << 64:
        return None
    return Token(found.group(1), offset)


@attrs.frozen
class Position:
    """What the probe last saw of one replica's replication.

    Args:
        replid: The replication id it follows (``master_replid`` in its INFO).
        offset: The offset it has processed (``slave_repl_offset``).
        at: ``time.monotonic()`` when the read that saw it started.
    """

    replid: str
    offset: int
    at: float


@attrs.frozen
class ConsistencyPolicy:
    """A pool's ``consistency:`` section.

    Args:
        fallback: Where token reads go when no replica has the write (the primary).
        max_age: Positions older than this many seconds do not qualify a replica.
        on_stale: ``fallback`` (at once) or ``wait`` (up to ``wait`` seconds for
            the key's own replica, then fall back; needs the consistency layer,
            :func:`selectors_lib.consistency.select`, which may do I/O).
        wait: The longest a ``wait`` lasts, in seconds.
    """

    fallback: Endpoint
    max_age: float = 2.0
    on_stale: str = "fallback"
    wait: float = 0.1


@attrs.frozen
class Stale:
    """A replica passed over for a token request, and why.

    Args:
        endpoint: Its id.
        behind: Bytes short of the token's offset (None when not comparable).
        age: Seconds since its position was observed (None when never observed).
        reason: In words.
    """

    endpoint: str
    behind: int | None
    age: float | None
    reason: str


@attrs.frozen
class TokenPick:
    """Where a token request goes, and what was passed over.

    Args:
        endpoint: A replica that has the write, or the fallback.
        qualified: True when ``endpoint`` is a replica that has the write.
        waitable: The key's own first live replica, worth waiting for when the
            policy says ``wait`` (None when it qualified or cannot catch up:
            another history, never observed).
        stale: Replicas passed over, in the order tried.
        token: The token.
        policy: The pool's policy.
    """

    endpoint: Endpoint
    qualified: bool
    waitable: Endpoint | None
    stale: tuple[Stale, ...]
    token: Token
    policy: ConsistencyPolicy


def token_pick(
    state: PoolState,
    policy: ConsistencyPolicy,
    criteria: Criteria,
    token: Token,
    positions: Mapping[str, Position],
    now: float,
) -> TokenPick:
    """Walk the key's own preference order for the first replica that has the write.

    Down replicas are skipped (unless the pool is in panic), so the key keeps
    its replica whenever that replica has caught up.

    Args:
        state: The winning pool's state.
        policy: Its consistency policy.
        criteria: The request.
        token: The request's token.
        positions: The latest replica positions, by endpoint id.
        now: ``time.monotonic()``.
    """
    # The common case first: the key's own replica has the write (one lookup).
    own = state.pick(criteria)
    position = positions.get(own.id)
    if (
        position is not None
        and position.replid == token.replid
        and position.offset >= token.offset
        and now - position.at <= policy.max_age
    ):
        return TokenPick(own, True, None, (), token, policy)
    pick = state.explain(criteria)
    order = state.failover_order(pick.key)
    if pick.key is None:  # keyless pools: start where the keyless policy points
        order = (pick.endpoint, *(e for e in order if e != pick.endpoint))
    stale: list[Stale] = []
    waitable: Endpoint | None = None
    for endpoint in order:
        if endpoint.id in state.down and not state.panic:
            stale.append(Stale(endpoint.id, None, None, "down"))
            continue
        position = positions.get(endpoint.id)
        if position is None:
            stale.append(Stale(endpoint.id, None, None, "no position observed"))
            continue
        age = max(0.0, now - position.at)
        if position.replid != token.replid:
            stale.append(Stale(endpoint.id, None, age, "follows another replication history"))
            continue
        behind = token.offset - position.offset
        if age > policy.max_age:
            stale.append(
                Stale(
                    endpoint.id,
                    max(0, behind),
                    age,
                    f"position {age:.3g}s old (max_age {policy.max_age:g}s)",
                )
            )
            if waitable is None:
                waitable = endpoint
            continue
        if behind <= 0:
            return TokenPick(endpoint, True, None, tuple(stale), token, policy)
        stale.append(Stale(endpoint.id, behind, age, f"{behind} bytes behind the token"))
        if waitable is None:
            waitable = endpoint
    return TokenPick(policy.fallback, False, waitable, tuple(stale), token, policy)
