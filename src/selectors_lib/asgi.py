"""ASGI integration: a routing middleware and a routing reverse proxy.

* :class:`SelectorsMiddleware` routes each HTTP request and hands the result to
  the wrapped app in ``scope["state"]`` (Starlette: ``request.state``). Pure
  ASGI, so it works with Starlette, FastAPI or any ASGI app; needs nothing
  beyond selectors_lib.
* :class:`SelectorsProxy` is an ASGI app that forwards each request to the
  endpoint chosen for it, with ``httpx`` (``pip install 'selectors-lib[asgi]'``).

Security: request headers are client-controlled. The authenticated user is
taken from ``scope["user"]`` (set by your authentication middleware), never
from ``X-SPINNAKER-USER``, unless the :class:`~selectors_lib.HeaderMapping` says
``trust_user_header=True``. Header values over the mapping's
``max_value_length`` are cut (kept over-long). The proxy refuses paths with dot
segments and drops header names with underscores. See ``docs/asgi.md``.
"""

from __future__ import annotations

import http.cookiejar
import logging
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from ._criteria import Criteria
from ._errors import NoEndpointError, SelectorsError
from ._headers import USER_HEADER, HeaderMapping
from ._pool import Endpoint
from ._proxy_common import (
    CRITERIA_KEY,
    DECISION_KEY,
    ENDPOINT_KEY,
    canonical_name,
    debug_value,
    decide,
    has_dot_segment,
    strip_hop_by_hop,
    user_name,
)
from ._router import Decision, Router

if TYPE_CHECKING:
    import httpx

__all__ = [
    "CRITERIA_KEY",
    "DECISION_KEY",
    "ENDPOINT_KEY",
    "SelectorsMiddleware",
    "SelectorsProxy",
    "UpstreamError",
    "scope_user",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
UserGetter = Callable[[Scope], str | None]


_log = logging.getLogger("selectors_lib")

_USER_HEADER_BYTES = USER_HEADER.encode("ascii")
#: Where Spinnaker services read the origin (Gate sets it; it derives deck/api).
_ORIGIN_HEADER = "x-spinnaker-user-origin"
# At most this many X-Forwarded-For entries are relayed, the last ones (the
# nearest hops): the rebuilt headers stay bounded whatever a client sends.
_MAX_FORWARDED_HOPS = 32

# A rejecting pool's message names its key sources: configuration stays internal.
_NO_ENDPOINT = "no endpoint for this request: it lacks the routing key this route requires\n"


class UpstreamError(SelectorsError, ConnectionError):
    """The upstream failed after the response had started; the connection is aborted.

    Raised out of :class:`SelectorsProxy` so the server drops the client
    connection instead of ending a truncated body as if it were complete.
    """


class _ClientGone(Exception):
    """The client disconnected while its request body was being forwarded."""


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


def _publish(
    scope: Scope, criteria: Criteria, endpoint: Endpoint, decision: Decision | None
) -> None:
    # The ASGI spec gives each request a shallow copy of the lifespan state,
    # so writing into it is per-request (and what Starlette's request.state reads).
    state = scope.get("state")
    if not isinstance(state, MutableMapping):
        state = {}
        scope["state"] = state
    state[CRITERIA_KEY] = criteria
    state[ENDPOINT_KEY] = endpoint
    state[DECISION_KEY] = decision


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

    ``lifespan`` and ``websocket`` scopes pass through untouched. When the
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
    ) -> None:
        self.app = app
        self.router = router
        self.mapping = mapping if mapping is not None else HeaderMapping()
        self.explain = explain or debug_header is not None
        self.debug_header = debug_header.lower().encode("latin-1") if debug_header else None
        self.user = user if user is not None else scope_user

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
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
        _publish(scope, criteria, endpoint, decision)
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


def _import_httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise ImportError(
            "selectors_lib.asgi.SelectorsProxy needs httpx: pip install 'selectors-lib[asgi]'"
        ) from None
    return httpx


def _upstream_url(httpx_mod: Any, base: str, scope: Scope) -> httpx.URL:
    """The upstream URL: the endpoint's URL, its base path, then the request's path and query.

    Raises:
        ValueError: The request path has a ``.`` or ``..`` segment (in any
            spelling), or the URL built would leave the endpoint's base path.
    """
    target: httpx.URL = httpx_mod.URL(base)
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes) or not raw:
        raw = urllib.parse.quote(scope.get("path", "/"), safe="/:@!$&'()*+,;=-._~").encode("ascii")
    root = scope.get("root_path") or ""
    if root:
        encoded_root = urllib.parse.quote(root, safe="/").encode("ascii")
        if raw.startswith(encoded_root):
            raw = raw[len(encoded_root) :]
    raw = raw.split(b"?", 1)[0]
    # httpx resolves dot segments after the base path is put in front, and many
    # backends resolve encoded ones: either way /../admin would leave the base
    # path. Such paths are refused outright rather than resolved.
    if has_dot_segment(raw):
        raise ValueError("dot segment in request path")
    if not raw.startswith(b"/"):
        raw = b"/" + raw
    base_path = target.raw_path.split(b"?", 1)[0].rstrip(b"/")
    query = scope.get("query_string") or b""
    full = base_path + raw + (b"?" + query if query else b"")
    url: httpx.URL = target.copy_with(raw_path=full)
    # Belt and braces: whatever httpx normalised, the result stays under the base.
    if not url.raw_path.startswith(base_path + b"/"):
        raise ValueError("request path leaves the endpoint's base path")
    return url


def _quoted(value: str) -> str:
    """An RFC 7239 value: a token as is, anything else as a quoted-string."""
    if value and all(c.isascii() and (c.isalnum() or c in "!#$%&'*+-.^_`|~") for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _forwarded_node(address: str) -> str:
    # RFC 7239 section 6: IPv6 addresses are bracketed (and so quoted).
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


class SelectorsProxy:
    """A reverse proxy ASGI app: each request goes to the endpoint the router picks.

    Streams request and response bodies, removes hop-by-hop headers (RFC 9110
    section 7.6.1, including those the ``Connection`` header names), sets
    ``Host`` to the upstream's, appends the client to ``X-Forwarded-For`` and
    sets ``X-Forwarded-Proto`` and ``X-Forwarded-Host``. Upstream connection
    failures answer ``502``, timeouts ``504``, a request the router rejects
    ``503``. If the upstream fails after the response started, the client
    connection is aborted (:class:`UpstreamError`) rather than ending the body
    as if complete. Redirects are passed back to the client, never followed.

    The routing result is also published in ``scope["state"]`` as by
    :class:`SelectorsMiddleware`.

    Args:
        router: The router to ask.
        mapping: How headers become criteria (user header not trusted by default).
        timeout: Seconds to wait for the upstream on each read, write and pool
            wait, or an ``httpx.Timeout``; ``None`` waits forever.
        connect_timeout: Seconds to connect (ignored when ``timeout`` is an
            ``httpx.Timeout``).
        client: An ``httpx.AsyncClient`` to use. By default the proxy makes its
            own, with no cookie jar (cookies of one user must never reach
            another), ``trust_env=False`` and no redirects, and closes it on
            lifespan shutdown or :meth:`aclose`. A client you pass should be
            dedicated to the proxy; you close it.
        explain: Compute the full decision for every request.
        debug_header: If set, a response header carrying ``rule=...; endpoint=...``.
        user: Returns the authenticated user for a scope (default ``scope["user"]``).
        forwarded: Set ``X-Forwarded-*`` and rebuild RFC 7239 ``Forwarded``
            from the same facts (the client's own ``Forwarded`` is dropped).
        user_header: The proxy removes every copy of this header the client
            sent and sets it to the user it routed on (the authenticated user,
            or the header itself when the mapping trusts it), or leaves it out
            when there is none. Backends that trust it (Spinnaker services
            trust ``X-SPINNAKER-USER``) then cannot be fooled through the
            proxy. ``None`` forwards the client's headers untouched. A user
            from ``scope["user"]`` is sent as UTF-8; one from the trusted
            header as the very bytes received.
        underscore_headers: Forward client headers whose names contain
            ``_``. Off by default, as in nginx and gunicorn: WSGI backends read
            ``X_Spinnaker_User`` as ``X-Spinnaker-User``. Headers the proxy sets
            (user, origin, forwarding) are replaced in every spelling anyway.

    With ``HeaderMapping(gate_origin=True)`` the client's
    ``X-SPINNAKER-USER-ORIGIN`` is replaced by the origin routed on, as Gate
    does. A request path with a ``.`` or ``..`` segment (``%2e`` forms
    included) is answered ``400``: it could leave the endpoint's base path.

    Raises:
        ImportError: httpx is not installed (``pip install 'selectors-lib[asgi]'``).
    """

    def __init__(
        self,
        router: Router,
        *,
        mapping: HeaderMapping | None = None,
        timeout: float | httpx.Timeout | None = 30.0,
        connect_timeout: float | None = 5.0,
        client: httpx.AsyncClient | None = None,
        explain: bool = False,
        debug_header: str | None = None,
        user: UserGetter | None = None,
        forwarded: bool = True,
        user_header: str | None = "X-SPINNAKER-USER",
        underscore_headers: bool = False,
    ) -> None:
        self._httpx = _import_httpx()
        self.router = router
        self.mapping = mapping if mapping is not None else HeaderMapping()
        if isinstance(timeout, self._httpx.Timeout):
            self.timeout: httpx.Timeout = timeout
        else:
            self.timeout = self._httpx.Timeout(timeout, connect=connect_timeout)
        self.explain = explain or debug_header is not None
        self.debug_header = debug_header.lower().encode("latin-1") if debug_header else None
        self.user = user if user is not None else scope_user
        self.forwarded = forwarded
        self.underscore_headers = underscore_headers
        self.user_header = user_header.lower() if user_header else None
        self._client = client
        self._owns_client = client is None

    def _get_client(self) -> httpx.AsyncClient:
        # Made lazily, inside the serving event loop; no await between the
        # check and the assignment, so concurrent first requests share one.
        client = self._client
        if client is None:
            client = self._httpx.AsyncClient(
                cookies=_NoCookieJar(),
                trust_env=False,
                follow_redirects=False,
                timeout=self.timeout,
            )
            self._client = client
        return client

    async def aclose(self) -> None:
        """Close the HTTP client the proxy made (a client you passed stays open)."""
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            # Not proxied: refusing before accept makes the server answer 403.
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _request_headers(
        self,
        scope: Scope,
        url: httpx.URL,
        criteria: Criteria,
        user: str | bytes | None,
    ) -> list[tuple[bytes, bytes]]:
        raw: list[tuple[str, str]] = [
            (n.decode("latin-1"), v.decode("latin-1")) for n, v in scope.get("headers") or ()
        ]
        original_host = next((v for n, v in raw if n.lower() == "host"), None)
        if not self.underscore_headers:
            # As nginx and gunicorn do by default: a WSGI/CGI backend reads
            # X_Spinnaker_User as X-Spinnaker-User, so such names are dropped.
            raw = [(n, v) for n, v in raw if "_" not in n]
        # expect: the server in front of us already handled 100-continue.
        kept = strip_hop_by_hop(raw, drop=("host", "expect"))
        # Names this proxy sets itself: every client copy goes, in every
        # spelling a backend could read as the same header.
        replaced = set()
        if self.forwarded:
            replaced |= {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "forwarded"}
        if self.user_header is not None:
            replaced.add(canonical_name(self.user_header))
        if self.mapping.gate_origin:
            replaced |= {canonical_name(h) for h, f in self.mapping.fields if f == "origin"}
            replaced.add(_ORIGIN_HEADER)
        previous = [v for n, v in kept if canonical_name(n) == "x-forwarded-for"]
        kept = [(n, v) for n, v in kept if canonical_name(n) not in replaced]
        if self.forwarded:
            kept.extend(self._forwarded_headers(scope, previous, original_host))
        if self.mapping.gate_origin and criteria.origin is not None:
            kept.append((_ORIGIN_HEADER, criteria.origin))
        # httpx would add Host from the URL; set it explicitly to the upstream's.
        kept.insert(0, ("host", url.netloc.decode("ascii")))
        # Names and values came in as bytes; latin-1 gives back the very same bytes.
        out = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in kept]
        if self.user_header is not None and user is not None:
            if isinstance(user, str):
                # A framework user is text: sent as UTF-8, unless it could not
                # make a valid header value.
                value = user.encode("utf-8") if user.isprintable() else b""
            else:
                value = user  # the bytes the server accepted as a header value
            if value:
                out.append((self.user_header.encode("latin-1"), value))
        return out

    def _forwarded_headers(
        self, scope: Scope, previous: list[str], host: str | None
    ) -> list[tuple[str, str]]:
        """``X-Forwarded-*`` and RFC 7239 ``Forwarded``, from the same facts.

        The client's ``X-Forwarded-For`` entries are kept in front of the peer
        address (they are the chain as far as anyone can tell); proto and host
        are this proxy's own. ``Forwarded`` is rebuilt from exactly these, so a
        client cannot say one thing there and another in ``X-Forwarded-*``.
        """
        chain = [part.strip() for value in previous for part in value.split(",")]
        chain = [part for part in chain if part][-_MAX_FORWARDED_HOPS:]
        client = scope.get("client")
        peer = str(client[0]) if client else None
        scheme = str(scope.get("scheme", "http"))
        if host is None and scope.get("server"):
            server_host, port = scope["server"][0], scope["server"][1]
            host = f"{server_host}:{port}" if port else str(server_host)
        out: list[tuple[str, str]] = []
        hops = [*chain, peer] if peer is not None else chain
        if hops:
            out.append(("x-forwarded-for", ", ".join(hops)))
        out.append(("x-forwarded-proto", scheme))
        if host is not None:
            out.append(("x-forwarded-host", host))
        elements = [f"for={_quoted(_forwarded_node(hop))}" for hop in chain]
        last = [f"for={_quoted(_forwarded_node(peer))}"] if peer is not None else []
        if host is not None:
            last.append(f"host={_quoted(host)}")
        last.append(f"proto={_quoted(scheme)}")
        elements.append(";".join(last))
        out.append(("forwarded", ", ".join(elements)))
        return out

    def _forwarded_user(
        self, scope: Scope, authenticated: str | None, criteria: Criteria
    ) -> str | bytes | None:
        """The user to pass on: the authenticated one, or the trusted header's own bytes."""
        if authenticated is not None or criteria.authenticated_user is None:
            return authenticated
        # Routed on the trusted header: forward what was received, byte for
        # byte (decoding and re-encoding could turn latin-1 into UTF-8).
        for name, value in scope.get("headers") or ():
            if name.lower() == _USER_HEADER_BYTES:
                return bytes(value)
        return criteria.authenticated_user  # pragma: no cover - the mapping found it

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        httpx_mod = self._httpx
        authenticated = self.user(scope)
        try:
            criteria, endpoint, decision = _route(
                self.router, self.mapping, lambda _: authenticated, scope, self.explain
            )
        except NoEndpointError as exc:
            _log.info("no endpoint: %s", exc)
            await _plain(send, 503, _NO_ENDPOINT, [])
            return
        _publish(scope, criteria, endpoint, decision)
        extra: list[tuple[bytes, bytes]] = []
        if self.debug_header is not None:
            extra.append((self.debug_header, debug_value(endpoint, decision).encode("latin-1")))
        try:
            url = _upstream_url(httpx_mod, endpoint.url, scope)
        except (httpx_mod.InvalidURL, UnicodeError, ValueError):
            await _plain(send, 400, "bad request path\n", extra)
            return

        first = await receive()
        if first["type"] == "http.disconnect":
            return
        # A body in one message (the usual case, and every GET) is sent as
        # is, with its length; a longer one streams through as it arrives.
        more = first.get("more_body", False)
        content: bytes | AsyncIterator[bytes] = (
            _body(first, receive) if more else first.get("body", b"")
        )
        request = httpx_mod.Request(
            scope.get("method", "GET"),
            url,
            headers=self._request_headers(
                scope, url, criteria, self._forwarded_user(scope, authenticated, criteria)
            ),
            content=content,
            extensions={"timeout": self.timeout.as_dict()},
        )
        try:
            response = await self._get_client().send(request, stream=True)
        except _ClientGone:
            return
        except httpx_mod.TimeoutException as exc:
            # Details go to the log: endpoint names and addresses are internal.
            _log.warning("upstream %s (%s) timed out: %r", endpoint.id, endpoint.url, exc)
            await _plain(send, 504, "gateway timeout: the upstream did not answer in time\n", extra)
            return
        except httpx_mod.TransportError as exc:
            _log.warning("upstream %s (%s) unreachable: %r", endpoint.id, endpoint.url, exc)
            await _plain(send, 502, "bad gateway: the upstream could not be reached\n", extra)
            return
        try:
            headers = [
                (n.encode("latin-1"), v.encode("latin-1"))
                for n, v in strip_hop_by_hop(
                    (n.decode("latin-1"), v.decode("latin-1")) for n, v in response.headers.raw
                )
            ]
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": headers + extra,
                }
            )
            try:
                if response.is_stream_consumed:
                    # Already read by the transport (httpx.MockTransport in tests).
                    await send(
                        {"type": "http.response.body", "body": response.content, "more_body": True}
                    )
                else:
                    # Raw bytes: a compressed body stays compressed, so Content-Length holds.
                    async for chunk in response.aiter_raw():
                        if chunk:
                            await send(
                                {"type": "http.response.body", "body": chunk, "more_body": True}
                            )
            except httpx_mod.TransportError as exc:
                raise UpstreamError(f"upstream {endpoint.id} failed mid-response: {exc}") from exc
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


async def _body(first: Message, receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives, starting with ``first``."""
    message = first
    while True:
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone


class _NoCookieJar(http.cookiejar.CookieJar):
    """A jar that never stores a cookie: one user's cookies must never reach another."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None
