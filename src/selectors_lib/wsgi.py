"""WSGI integration: a middleware that routes each request.

:class:`SelectorsWSGIMiddleware` builds :class:`~selectors_lib.Criteria` from
the request headers and ``REMOTE_USER``, asks the router, and stores the result
in the WSGI environ for the wrapped app (Flask, Django, Pyramid, bare WSGI):

* ``environ["selectors_lib.endpoint"]``: the chosen :class:`~selectors_lib.Endpoint`;
* ``environ["selectors_lib.decision"]``: the :class:`~selectors_lib.Decision`
  when ``explain`` or ``debug_header`` is set, else ``None``;
* ``environ["selectors_lib.criteria"]``: the criteria routed on.

Security: headers are client-controlled. The authenticated user comes from
``REMOTE_USER`` (set by the server or your authentication middleware), never
from ``X-SPINNAKER-USER`` unless the mapping sets ``trust_user_header=True``.
Needs no dependency beyond selectors_lib. See ``docs/wsgi.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Protocol

from ._criteria import Criteria
from ._errors import NoEndpointError
from ._headers import HeaderMapping
from ._proxy_common import CRITERIA_KEY, DECISION_KEY, ENDPOINT_KEY, debug_value, decide
from ._router import Router

__all__ = [
    "CRITERIA_KEY",
    "DECISION_KEY",
    "ENDPOINT_KEY",
    "SelectorsWSGIMiddleware",
    "environ_headers",
    "remote_user",
]

_log = logging.getLogger("selectors_lib")

Environ = dict[str, Any]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class StartResponse(Protocol):
    """The WSGI ``start_response`` callable (PEP 3333)."""

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = ...,
        /,
    ) -> Callable[[bytes], object]: ...


WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]
UserGetter = Callable[[Mapping[str, Any]], str | None]


def environ_headers(environ: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """The request headers of a WSGI environ as ``(lowercase-name, value)`` pairs.

    ``HTTP_X_SPINNAKER_USER`` becomes ``x-spinnaker-user``; ``CONTENT_TYPE`` and
    ``CONTENT_LENGTH`` are included. Underscores and dashes are indistinguishable
    in the environ, so a client sending ``X_Spinnaker_User`` looks the same as
    ``X-Spinnaker-User`` (gunicorn drops underscore headers by default; wsgiref
    does not): one more reason never to trust the user header from clients.

    Args:
        environ: The WSGI environ.
    """
    for key, value in environ.items():
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        if key.startswith("HTTP_"):
            yield key[5:].replace("_", "-").lower(), value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            yield key.replace("_", "-").lower(), value


def remote_user(environ: Mapping[str, Any]) -> str | None:
    """The authenticated user of a WSGI request: ``REMOTE_USER``, if non-empty."""
    user = environ.get("REMOTE_USER")
    return user if isinstance(user, str) and user else None


class SelectorsWSGIMiddleware:
    """Route every request and expose the result in the WSGI environ.

    When the winning pool rejects a request without a routing key, the
    middleware answers ``503`` itself. No per-request state on the instance.

    Args:
        app: The WSGI app to wrap.
        router: The router to ask.
        mapping: How headers become criteria (user header not trusted by default).
        explain: Compute the full decision for every request (uncached).
        debug_header: If set, a response header carrying
            ``rule=<rule>; endpoint=<id>`` (implies ``explain``). It reveals
            routing internals: enable it for debugging or internal traffic only.
        user: Returns the authenticated user for an environ; default
            :func:`remote_user`.
    """

    def __init__(
        self,
        app: WSGIApp,
        router: Router,
        *,
        mapping: HeaderMapping | None = None,
        explain: bool = False,
        debug_header: str | None = None,
        user: UserGetter | None = None,
    ) -> None:
        self.app = app
        self.router = router
        self.mapping = mapping if mapping is not None else HeaderMapping()
        self.explain = explain or debug_header is not None
        self.debug_header = debug_header
        self.user = user if user is not None else remote_user

    def criteria(self, environ: Mapping[str, Any]) -> Criteria:
        """The criteria of one request (headers through the mapping, user from the getter)."""
        return self.mapping.criteria(environ_headers(environ), user=self.user(environ))

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Handle one WSGI request."""
        criteria = self.criteria(environ)
        try:
            endpoint, decision = decide(self.router, criteria, explain=self.explain)
        except NoEndpointError as exc:
            _log.info("no endpoint: %s", exc)
            # The message names the pool's key sources: configuration stays internal.
            body = b"no endpoint for this request: it lacks the routing key this route requires\n"
            start_response(
                "503 Service Unavailable",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                ],
            )
            return [body]
        environ[CRITERIA_KEY] = criteria
        environ[ENDPOINT_KEY] = endpoint
        environ[DECISION_KEY] = decision
        header = self.debug_header
        if header is None:
            return self.app(environ, start_response)
        value = debug_value(endpoint, decision)

        def start_with_header(
            status: str,
            headers: list[tuple[str, str]],
            exc_info: ExcInfo | None = None,
            /,
        ) -> Callable[[bytes], object]:
            return start_response(status, [*headers, (header, value)], exc_info)

        return self.app(environ, start_with_header)
