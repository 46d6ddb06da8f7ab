"""ASGI integration: a routing middleware.

:class:`SelectorsMiddleware` routes each HTTP request and hands the result to
the wrapped app in ``scope["state"]`` (Starlette: ``request.state``). Pure
ASGI, so it works with Starlette, FastAPI or any ASGI app; needs nothing
beyond selectors_lib. With the ASGI lifespan it also runs the health monitor
of the configuration's ``health:`` section.

The reverse proxy lives in :mod:`selectors_lib.gateway` (``SelectorsProxy``).

Security: request headers are client-controlled. The authenticated user is
taken from ``scope["user"]`` (set by your authentication middleware), never
from ``X-SPINNAKER-USER``, unless the :class:`~selectors_lib.HeaderMapping` says
``trust_user_header=True``. Header values over the mapping's
``max_value_length`` are cut (kept over-long). See ``docs/asgi.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ._criteria import Criteria
from ._errors import NoEndpointError
from ._headers import HeaderMapping
from ._pool import Endpoint
from ._proxy_common import (
    CRITERIA_KEY,
    DECISION_KEY,
    ENDPOINT_KEY,
    debug_value,
    decide,
    publish,
    user_name,
)
from ._router import Decision, Router
from .gateway._lifespan import HealthLifespan

__all__ = [
    "CRITERIA_KEY",
    "DECISION_KEY",
    "ENDPOINT_KEY",
    "SelectorsMiddleware",
    "scope_user",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
UserGetter = Callable[[Scope], str | None]


_log = logging.getLogger("selectors_lib")

# A rejecting pool's message names its key sources: configuration stays internal.
_NO_ENDPOINT = "no endpoint for this request: it lacks the routing key this route requires\n"


def scope_user(scope: Scope) -> str | None:
    """The authenticated user of an ASGI request, from ``scope["user"]``.

    Args:
        scope: The ASGI connection scope.

    Returns:
        The user name (a string user, or a Starlette-style user's ``username``,
        ``identity`` or ``display_name``), or ``None`` when unauthenticated.
    """
    return user_name(scope.get("user"))


def _route(
    router: Router,
    mapping: HeaderMapping,
    user_getter: UserGetter,
    scope: Scope,
    explain: bool,
) -> tuple[Criteria, Endpoint, Decision | None]:
    criteria = mapping.criteria(scope.get("headers") or (), user=user_getter(scope))
    endpoint, decision = decide(router, criteria, explain=explain)
    return criteria, endpoint, decision


async def _plain(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = text.encode("utf-8")
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class SelectorsMiddleware:
    """Route every HTTP request and expose the result to the wrapped app.

    For each ``http`` scope the middleware builds :class:`~selectors_lib.Criteria`
    from the headers and the authenticated user, asks the router, and stores in
    ``scope["state"]``:

    * ``"selectors_lib.endpoint"``: the chosen :class:`~selectors_lib.Endpoint`;
    * ``"selectors_lib.decision"``: the :class:`~selectors_lib.Decision` when
      ``explain`` or ``debug_header`` is set, else ``None``;
    * ``"selectors_lib.criteria"``: the criteria routed on.

    ``websocket`` scopes pass through untouched; ``lifespan`` ones too, after
    the middleware starts (on startup) or stops (on shutdown) the health
    monitor of the configuration's ``health:`` section. When the
    winning pool rejects a request without a routing key, the middleware answers
    ``503`` itself. No per-request state is kept on the instance.

    Args:
        app: The ASGI app to wrap.
        router: The router to ask.
        mapping: How headers become criteria (default: Spinnaker headers, user
            header not trusted).
        explain: Compute the full decision for every request (uncached).
        debug_header: If set, the name of a response header that carries
            ``rule=<rule>; endpoint=<id>`` (implies ``explain``). It reveals
            routing internals: enable it for debugging or internal traffic only.
        user: Returns the authenticated user for a scope; default
            :func:`scope_user` (``scope["user"]``).
        health: Run the configuration's health monitor with the lifespan
            (False: you run your own).
    """

    def __init__(
        self,
        app: ASGIApp,
        router: Router,
        *,
        mapping: HeaderMapping | None = None,
        explain: bool = False,
        debug_header: str | None = None,
        user: UserGetter | None = None,
        health: bool = True,
    ) -> None:
        self.app = app
        self.router = router
        self.mapping = mapping if mapping is not None else HeaderMapping()
        self.explain = explain or debug_header is not None
        self.debug_header = debug_header.lower().encode("latin-1") if debug_header else None
        self.user = user if user is not None else scope_user
        self._health = HealthLifespan(router, enabled=health)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] == "lifespan":
            await self.app(scope, self._lifespan_receive(receive), send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            criteria, endpoint, decision = _route(
                self.router, self.mapping, self.user, scope, self.explain
            )
        except NoEndpointError as exc:
            _log.info("no endpoint: %s", exc)
            await _plain(send, 503, _NO_ENDPOINT, [])
            return
        publish(scope, criteria, endpoint, decision)
        header = self.debug_header
        if header is None:
            await self.app(scope, receive, send)
            return
        value = debug_value(endpoint, decision).encode("latin-1")

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", ()), (header, value)]
            await send(message)

        await self.app(scope, receive, send_with_header)

    def _lifespan_receive(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._health.start()
            elif message["type"] == "lifespan.shutdown":
                await self._health.stop()
            return message

        return wrapped
