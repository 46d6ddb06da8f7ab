"""When a failed attempt may be tried again, and how many retries the gateway affords.

As Envoy's ``retry_policy`` and nginx's ``proxy_next_upstream``:

* nothing was sent (the connection was refused, timed out or the endpoint's
  pool stayed full, or the write into a pooled connection failed at once
  because the upstream had closed it): any method is retried;
* the connection was reset or closed before a whole response head arrived,
  no first byte came within the first-byte timeout, or the head was not
  valid HTTP: idempotent methods are retried (a non-idempotent one may have
  been processed);
* once the response head went to the client, nothing is retried: the client
  connection is aborted if the upstream fails mid-body.

Retries also draw on a budget, so that a failing fleet is not sent a multiple
of its load: each request deposits ``budget`` tokens, each retry takes one,
and ``min_retries_per_second`` are always allowed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["IDEMPOTENT", "Failure", "RetryBudget", "retryable"]

#: RFC 9110 section 9.2.2.
IDEMPOTENT: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class Failure:
    """Kinds of failed attempts, as the retry policy sees them."""

    NOT_SENT = "not_sent"  # refused, connect timeout, pool full
    RESET = "reset"  # closed or reset before a whole response head
    TIMEOUT = "first_byte_timeout"
    PROTOCOL = "protocol"  # the upstream's answer was not HTTP (or broke off mid-head)


def retryable(kind: str, method: str, replayable: bool) -> bool:
    """Whether an attempt that failed as ``kind`` may be tried on another replica.

    Args:
        kind: A :class:`Failure` value.
        method: The request method.
        replayable: Whether the request body can be sent again (it was read
            whole, or none of it was consumed yet).
    """
    if not replayable:
        return False
    if kind == Failure.NOT_SENT:
        return True
    # Reset, timeout or an answer that is not HTTP: nothing reached the
    # client yet, but the upstream may have acted on the request.
    return method in IDEMPOTENT


class RetryBudget:
    """Tokens for retries: deposits per request, a floor per second.

    Not thread-safe: one per event loop (the gateway's).

    Args:
        ratio: Tokens each request deposits (0.2: a retry per five requests).
        per_second: Retries always allowed per second.
        clock: Monotonic clock (seconds).
    """

    def __init__(
        self, ratio: float, per_second: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ratio = ratio
        self.per_second = per_second
        self._clock = clock
        # The deposits are capped, so a long quiet spell cannot pay for a storm.
        self._cap = max(10.0, per_second)
        self._tokens = 0.0
        self._floor = per_second
        self._floor_at = clock()

    def deposit(self) -> None:
        """Record a request."""
        self._tokens = min(self._cap, self._tokens + self.ratio)

    def withdraw(self) -> bool:
        """Take a retry if the budget allows one."""
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        now = self._clock()
        elapsed = now - self._floor_at
        self._floor_at = now
        self._floor = min(self.per_second, self._floor + elapsed * self.per_second)
        if self._floor >= 1.0:
            self._floor -= 1.0
            return True
        return False
