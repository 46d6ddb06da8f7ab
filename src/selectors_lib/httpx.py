"""httpx transports for client-side routing (``pip install 'selectors-lib[httpx]'``).

A service calling another through a logical base URL (Orca calling
``http://clouddriver``) wraps its transport in :class:`SelectorsTransport` (or
:class:`AsyncSelectorsTransport`). Requests under the base URL are sent to the
endpoint the router picks: the path is kept, the endpoint's own base path put in
front, and the ``Host`` header set to the new host. Other requests pass through
untouched, as with httpx's own ``mounts``.

Criteria come from, in order: ``request.extensions["selectors_lib.criteria"]``;
the :func:`routing_context` in effect; the request headers through a
:class:`~selectors_lib.HeaderMapping`. The decision (or, with ``explain=False``,
just the endpoint) is attached to ``request.extensions``. See ``docs/httpx.md``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

try:
    import httpx
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "selectors_lib.httpx needs httpx: pip install 'selectors-lib[httpx]'"
    ) from None

from ._criteria import Criteria
from ._errors import SelectorsError
from ._headers import HeaderMapping
from ._pool import Endpoint
from ._proxy_common import CRITERIA_KEY, DECISION_KEY, ENDPOINT_KEY, decide, has_dot_segment
from ._router import Router

__all__ = [
    "CRITERIA_KEY",
    "DECISION_KEY",
    "ENDPOINT_KEY",
    "AsyncSelectorsTransport",
    "SelectorsTransport",
    "UnsafePathError",
    "current_criteria",
    "routing_context",
]

_CURRENT: contextvars.ContextVar[Criteria | None] = contextvars.ContextVar(
    "selectors_lib.criteria", default=None
)

#: For outgoing requests the headers are set by your own code, so by default the
#: transport takes the user from ``X-SPINNAKER-USER`` (as Orca propagates it).
CLIENT_MAPPING = HeaderMapping(trust_user_header=True)


@contextmanager
def routing_context(criteria: Criteria) -> Iterator[Criteria]:
    """Route requests made inside the block on ``criteria``.

    Uses :mod:`contextvars`, so it follows the code into ``await`` and into
    asyncio tasks created inside the block, and is private to each thread.

    Args:
        criteria: What requests in the block are routed on (unless a request
            carries its own in ``extensions``).

    Yields:
        ``criteria``.
    """
    token = _CURRENT.set(criteria)
    try:
        yield criteria
    finally:
        _CURRENT.reset(token)


def current_criteria() -> Criteria | None:
    """The criteria of the innermost :func:`routing_context`, if any."""
    return _CURRENT.get()


class UnsafePathError(SelectorsError, ValueError):
    """A request under the base URL has a ``.`` or ``..`` path segment; it is not sent.

    httpx resolves literal dot segments when it builds a URL, but encoded ones
    (``%2e%2e``, ``..%2f``, ``..;``) reach the endpoint, whose server may
    resolve them: ``/api/%2e%2e/admin`` would leave the endpoint's base path.
    Paths often carry caller-supplied names, so such requests are refused.
    """


def _split(raw_path: bytes) -> tuple[bytes, bytes]:
    path, sep, query = raw_path.partition(b"?")
    return path, sep + query


class _Router:
    """The routing shared by the sync and async transports."""

    def __init__(
        self,
        router: Router,
        base_url: str | httpx.URL,
        mapping: HeaderMapping | None,
        explain: bool,
    ) -> None:
        base = httpx.URL(base_url)
        if not base.scheme or not base.host:
            raise ValueError(f"base_url needs a scheme and a host, got {str(base)!r}")
        self.router = router
        self.base = base
        self._origin = (base.scheme, base.host, base.port)
        self._prefix = _split(base.raw_path)[0].rstrip(b"/")
        self.mapping = mapping if mapping is not None else CLIENT_MAPPING
        self.explain = explain

    def remainder(self, url: httpx.URL) -> bytes | None:
        """The part of ``url``'s raw path after the base path, or None if not under it."""
        if (url.scheme, url.host, url.port) != self._origin:
            return None
        path, query = _split(url.raw_path)
        prefix = self._prefix
        if not path.startswith(prefix):
            return None
        rest = path[len(prefix) :]
        # A segment boundary: /api matches /api and /api/x, not /apix.
        if rest and not rest.startswith(b"/"):
            return None
        return rest + query

    def criteria(self, request: httpx.Request) -> Criteria:
        given = request.extensions.get(CRITERIA_KEY)
        if isinstance(given, Criteria):
            return given
        current = _CURRENT.get()
        if current is not None:
            return current
        # Raw bytes: decoded by the one rule every adapter uses (UTF-8 when
        # valid, else latin-1, value by value), not httpx's whole-set guess.
        return self.mapping.criteria(request.headers.raw)

    def route(self, request: httpx.Request) -> None:
        """Point ``request`` at its endpoint, if it is under the base URL.

        Raises:
            UnsafePathError: The path under the base URL has a dot segment.
            NoEndpointError: The pool rejects a request without a routing key.
        """
        rest = self.remainder(request.url)
        if rest is None:
            return
        if has_dot_segment(_split(rest)[0]):
            raise UnsafePathError(f"dot segment in request path: {_split(rest)[0][:200]!r}")
        criteria = self.criteria(request)
        endpoint, decision = decide(self.router, criteria, explain=self.explain)
        target = _target(endpoint)
        base_path = _split(target.raw_path)[0].rstrip(b"/")
        path = base_path + rest
        if not path.startswith(b"/"):
            path = b"/" + path
        url = target.copy_with(raw_path=path)
        # Belt and braces: whatever httpx normalised, the result stays under the base.
        new_path = _split(url.raw_path)[0]
        if new_path != base_path and not new_path.startswith(base_path + b"/"):
            raise UnsafePathError(f"request path leaves the endpoint's base path: {path[:200]!r}")
        request.url = url
        # httpx set Host from the logical URL when it built the request.
        request.headers["Host"] = request.url.netloc.decode("ascii")
        request.extensions = {
            **request.extensions,
            CRITERIA_KEY: criteria,
            ENDPOINT_KEY: endpoint,
            DECISION_KEY: decision,
        }


def _target(endpoint: Endpoint) -> httpx.URL:
    return httpx.URL(endpoint.url)


class SelectorsTransport(httpx.BaseTransport):
    """A sync httpx transport that routes requests under ``base_url``.

    Args:
        router: The router to ask.
        base_url: The logical base URL (``http://clouddriver``); a request
            matches when scheme, host and port are equal and its path is under
            the base path (on a segment boundary).
        transport: The transport that sends the rewritten request (default a
            new ``httpx.HTTPTransport()``); closed with this one.
        mapping: How headers become criteria when neither an extension nor a
            :func:`routing_context` gives them (default trusts ``X-SPINNAKER-USER``:
            outgoing headers are your own code's).
        explain: Attach the full :class:`~selectors_lib.Decision` (uncached);
            with False only the endpoint is attached and the decision is ``None``.

    Raises:
        ValueError: ``base_url`` lacks a scheme or host.
        NoEndpointError: (from ``handle_request``) the pool rejects a request
            without a routing key.
        UnsafePathError: (from ``handle_request``) the path under the base URL
            has a ``.`` or ``..`` segment, in any spelling (``%2e%2e``,
            ``..%2f``, ``..;x``).
    """

    def __init__(
        self,
        router: Router,
        base_url: str | httpx.URL,
        *,
        transport: httpx.BaseTransport | None = None,
        mapping: HeaderMapping | None = None,
        explain: bool = True,
    ) -> None:
        self._routing = _Router(router, base_url, mapping, explain)
        self._inner = transport if transport is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Route ``request`` (if under the base URL) and send it with the inner transport."""
        self._routing.route(request)
        return self._inner.handle_request(request)

    def close(self) -> None:
        """Close the inner transport."""
        self._inner.close()


class AsyncSelectorsTransport(httpx.AsyncBaseTransport):
    """The asyncio/trio twin of :class:`SelectorsTransport` (same arguments).

    The inner transport defaults to ``httpx.AsyncHTTPTransport()``.
    """

    def __init__(
        self,
        router: Router,
        base_url: str | httpx.URL,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        mapping: HeaderMapping | None = None,
        explain: bool = True,
    ) -> None:
        self._routing = _Router(router, base_url, mapping, explain)
        self._inner = transport if transport is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Route ``request`` (if under the base URL) and send it with the inner transport."""
        self._routing.route(request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self._inner.aclose()
