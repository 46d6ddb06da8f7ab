"""The gateway's ASGI app: route each request, forward it, fail over, stream back.

One request, in order: build criteria from the headers and the authenticated
user; ask the router for the winning rule and the key's replica; send the
request on that endpoint's own connection pool; on a failure the retry
policy allows, try the key's next replica (its own failover order, health as
of now); stream the answer back, cancelling the upstream exchange the moment
the client disconnects. Outcomes feed passive outlier detection; the
configuration's health monitor runs with the ASGI lifespan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import attrs

from selectors_lib._errors import NoEndpointError, SelectorsError
from selectors_lib._events import SelectEvent
from selectors_lib._headers import TOKEN_HEADER, HeaderMapping
from selectors_lib._pool import Endpoint
from selectors_lib._proxy_common import (
    debug_value,
    publish,
    user_name,
)
from selectors_lib._router import Decision, Router
from selectors_lib.consistency import TOKEN_COOKIE, atoken_from_url

from ._attempt import AttemptFailed, exchange
from ._body import REPLAY_LIMIT, ClientStalled, RequestBody
from ._forwarding import RequestHeaders
from ._lifespan import HealthLifespan
from ._messages import BadRequest, UpstreamTarget, response_headers, rewrite_location, upstream_path
from ._outlier import OutlierDetector
from ._pool import EndpointPool
from ._retry import Failure, RetryBudget, retryable
from ._routing import Decisions
from ._settings import GatewaySettings, RouteSettings
from ._upstream import ClientGone, Connection, UpstreamClosed, UpstreamProtocolError, require

__all__ = ["RECORD_KEY", "SelectorsProxy", "UpstreamError"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
UserGetter = Callable[[Scope], str | None]
Headers = list[tuple[bytes, bytes]]

#: Where a handled request's record is left: ``scope["extensions"][RECORD_KEY]``.
RECORD_KEY = "selectors_lib"

_log = logging.getLogger("selectors_lib")
_DEFAULT_SETTINGS = GatewaySettings()
#: Seconds the proxy waits for the primary's offset after a write route's response.
_TOKEN_TIMEOUT = 0.5
_NO_ENDPOINT = "no endpoint for this request: it lacks the routing key this route requires\n"
_STATUS = {
    Failure.NOT_SENT: (502, "bad gateway: the upstream could not be reached\n"),
    Failure.RESET: (502, "bad gateway: the upstream closed the connection\n"),
    Failure.PROTOCOL: (502, "bad gateway: the upstream's answer was not valid HTTP\n"),
    Failure.TIMEOUT: (504, "gateway timeout: the upstream did not answer in time\n"),
}
_POOL_FULL = (503, "service unavailable: every connection to the upstream is busy\n")
_STALLED = "request timeout: the request body stopped arriving\n"


class UpstreamError(SelectorsError, ConnectionError):
    """The upstream failed after the response had started; the connection is aborted.

    Raised out of :class:`SelectorsProxy` so the server drops the client
    connection instead of ending a truncated body as if it were complete.
    """


async def _plain(send: Send, status: int, text: str, extra: Headers) -> None:
    body = text.encode("utf-8")
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _record(scope: Scope, record: dict[str, Any]) -> None:
    extensions = scope.get("extensions")
    if not isinstance(extensions, dict):
        extensions = {}
        scope["extensions"] = extensions
    extensions[RECORD_KEY] = record


class SelectorsProxy:
    """A reverse proxy ASGI app: each request goes to the replica the router picks.

    Handles ``http`` and ``lifespan`` scopes (``websocket`` is refused, see
    docs/gateway.md). Streams bodies both ways with flow control, removes
    hop-by-hop headers (every field ``Connection`` names), frames bodies itself
    (``Content-Length`` never travels beside ``Transfer-Encoding``), sets
    ``Host`` to the upstream's and the ``X-Forwarded-*``/``Forwarded`` headers.
    ``CONNECT``, absolute-form targets naming another host and paths with dot
    segments are answered ``400``.

    Failures: connect failures, resets before the first byte and first-byte
    timeouts are retried on the key's next replica as the route's retry policy
    allows; otherwise ``502`` (unreachable, reset), ``504`` (timeout) or ``503``
    (the endpoint's pool stayed full). A failure after the response started
    aborts the client connection (:class:`UpstreamError`). Redirects are
    passed back, never followed; no cookie is kept.

    After each request, ``scope["extensions"]["selectors_lib"]`` holds
    ``rule``, ``endpoint``, ``key_source``, ``attempts``, ``failover`` and
    ``upstream_status`` (for access logs); ``scope["state"]`` gets the
    criteria, endpoint and decision as from
    :class:`~selectors_lib.asgi.SelectorsMiddleware`.

    Args:
        router: The router to ask.
        mapping: How headers become criteria (user header not trusted by default).
        settings: Gateway settings; default: the configuration's ``gateway:``
            section (read again after each reload), else the defaults.
        timeout: Overrides every route's first-byte and idle timeouts (seconds).
        connect_timeout: Overrides every route's connect timeout (seconds).
        explain: Compute the full decision for every request.
        debug_header: If set, a response header carrying ``rule=...; endpoint=...``.
        user: Returns the authenticated user for a scope (default ``scope["user"]``).
        forwarded: Set ``X-Forwarded-*`` and rebuild RFC 7239 ``Forwarded``.
        user_header: Replaced by the user routed on (every client copy, in
            every spelling, is removed); ``None`` forwards client headers untouched.
        underscore_headers: Forward client headers whose names contain ``_``.
        health: Run the configuration's health monitor with the lifespan.
        outlier_detection: Eject replicas that fail requests (also needs the
            settings' ``outlier.enabled``).

    Raises:
        ImportError: httptools is missing (``pip install 'selectors-lib[gateway]'``).
    """

    def __init__(
        self,
        router: Router,
        *,
        mapping: HeaderMapping | None = None,
        settings: GatewaySettings | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        explain: bool = False,
        debug_header: str | None = None,
        user: UserGetter | None = None,
        forwarded: bool = True,
        user_header: str | None = "X-SPINNAKER-USER",
        underscore_headers: bool = False,
        health: bool = True,
        outlier_detection: bool = True,
    ) -> None:
        require()
        self.router = router
        self.mapping = mapping if mapping is not None else HeaderMapping()
        self.settings = settings
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.explain = explain or debug_header is not None
        self.debug_header = debug_header.lower().encode("latin-1") if debug_header else None
        self.user = user if user is not None else _scope_user
        self.forwarded = forwarded
        self.underscore_headers = underscore_headers
        self.user_header = user_header.lower().encode("latin-1") if user_header else None
        self.outlier_detection = outlier_detection
        self._health = HealthLifespan(router, enabled=health)
        self._pools: dict[str, EndpointPool] = {}
        self._outlier: OutlierDetector | None = None
        self._seen_config: object = None
        self._gateway: GatewaySettings = _DEFAULT_SETTINGS
        # Per rule: its settings and retry budget (both replaced on a reload).
        self._routes: dict[str, tuple[RouteSettings, RetryBudget]] = {}
        self._closed = False
        self._decisions = Decisions(router, self.mapping)
        self._headers = RequestHeaders(
            self.mapping,
            forwarded=forwarded,
            user_header=self.user_header,
            underscore_headers=underscore_headers,
        )

    # -- ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await self._refuse_websocket(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self._health.start()
                except Exception as exc:  # an extra a probe needs is missing, or the like
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _refuse_websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        extensions = scope.get("extensions") or {}
        if "websocket.http.response" not in extensions:
            # Refusing before accept makes the server answer 403.
            await send({"type": "websocket.close", "code": 1003})
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        body = b"websocket upgrades are not proxied by this gateway\n"
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 501,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode("ascii")),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body, "more_body": False})

    async def aclose(self) -> None:
        """Stop the health monitor, lift outlier ejections and close every connection.

        Requests still in flight finish on their connections, which close when
        released. Call it after the server stopped taking requests (the
        lifespan shutdown does).
        """
        self._closed = True
        await self._health.stop()
        if self._outlier is not None:
            self._outlier.close()
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()

    def connections(self) -> dict[str, int]:
        """Upstream connections open now (busy and idle), by endpoint URL."""
        return {url: pool.open for url, pool in sorted(self._pools.items())}

    # -- settings ----------------------------------------------------------------------

    def _refresh(self) -> None:
        config = self.router.config
        self._seen_config = config
        gateway = self.settings or config.gateway or _DEFAULT_SETTINGS
        self._gateway = gateway
        self._routes = {}
        urls = {endpoint.url for endpoint in config.endpoints}
        for url, pool in list(self._pools.items()):
            if url not in urls:
                # Gone with a reload: its idle connections close now, its busy
                # ones as their requests end.
                pool.close()
                del self._pools[url]
            else:
                pool.limit = gateway.max_connections
                pool.keepalive = gateway.keepalive_timeout
        if self._outlier is not None:
            self._outlier.settings = gateway.outlier
            self._outlier.policy(gateway.outlier.consecutive_failures)
        if gateway.token_cookie and self.mapping.token_cookie is None:
            self.mapping = attrs.evolve(self.mapping, token_cookie=TOKEN_COOKIE)
            self._decisions = Decisions(self.router, self.mapping)

    def _route(self, rule: str) -> tuple[RouteSettings, RetryBudget]:
        found = self._routes.get(rule)
        if found is None:
            settings = self._gateway.route(rule)
            if self.timeout is not None or self.connect_timeout is not None:
                settings = RouteSettings(
                    connect_timeout=self.connect_timeout or settings.connect_timeout,
                    first_byte_timeout=self.timeout or settings.first_byte_timeout,
                    idle_timeout=self.timeout or settings.idle_timeout,
                    retries=settings.retries,
                    rewrite_location=settings.rewrite_location,
                    write_token=settings.write_token,
                )
            retries = settings.retries
            budget = RetryBudget(retries.budget, retries.min_retries_per_second)
            found = self._routes[rule] = (settings, budget)
        return found

    def _pool(self, endpoint: Endpoint) -> EndpointPool:
        pool = self._pools.get(endpoint.url)
        if pool is None:
            gateway = self._gateway
            pool = EndpointPool(
                UpstreamTarget(endpoint.url), gateway.max_connections, gateway.keepalive_timeout
            )
            self._pools[endpoint.url] = pool
        return pool

    def _detector(self) -> OutlierDetector | None:
        if not self.outlier_detection or not self._gateway.outlier.enabled:
            return None
        if self._outlier is None:
            self._outlier = OutlierDetector(self.router, self._gateway.outlier)
        return self._outlier

    # -- one request -------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        router = self.router
        if router.config is not self._seen_config:
            self._refresh()  # before routing: a reload may turn the token cookie on
        authenticated = self.user(scope)
        observed = bool(router.events.observers)
        started = time.perf_counter() if observed else 0.0
        decision: Decision | None = None
        try:
            criteria, rule, state, pick = self._decisions.decide(scope, authenticated)
            if self.explain:
                decision = router.explain(criteria)
                endpoint, key, key_source = decision.endpoint, decision.key, decision.key_source
                moved = decision.failover
            else:
                endpoint, key, key_source = pick.endpoint, pick.key, pick.key_source
                choice = pick.first_choice
                # Identity first: the same Endpoint object unless the key moved.
                moved = choice is not None and choice is not endpoint and choice != endpoint
        except NoEndpointError as exc:
            _log.info("no endpoint: %s", exc)
            await _plain(send, 503, _NO_ENDPOINT, [])
            return
        if observed:
            router.events.emit(
                SelectEvent(
                    rule.name, endpoint.id, moved, state.panic, time.perf_counter() - started
                )
            )
        publish(scope, criteria, endpoint, decision)
        record: dict[str, Any] = {
            "rule": rule.name,
            "endpoint": endpoint.id,
            "key_source": key_source,
            "attempts": 0,
            "failover": moved,
            "upstream_status": None,
        }
        _record(scope, record)
        extra: Headers = []
        if self.debug_header is not None:
            extra.append((self.debug_header, debug_value(endpoint, decision).encode("latin-1")))
        settings, budget = self._route(rule.name)
        pool = self._pool(endpoint)
        try:
            path = upstream_path(pool.target, scope)
        except (BadRequest, UnicodeError, ValueError) as exc:
            await _plain(send, 400, f"bad request: {exc}\n", extra)
            return
        first = await receive()
        if first["type"] == "http.disconnect":
            return
        method = scope.get("method") or "GET"
        headers = self._headers.build(scope, criteria, authenticated)
        budget.deposit()
        detector = self._detector()
        tried: list[str] = []
        body_state = RequestBody(first, receive)
        if body_state.streaming:
            body_state.declare(list(scope.get("headers") or ()))
            try:
                await body_state.buffer(REPLAY_LIMIT)
            except ClientGone:
                return
        while True:
            record["attempts"] += 1
            tried.append(endpoint.id)
            try:
                if record["attempts"] > 1:
                    record["endpoint"] = endpoint.id
                    # The connection goes back to the pool it came from, even if
                    # a reload replaced or removed the endpoint's pool meanwhile.
                    pool = self._pool(endpoint)
                    path = upstream_path(pool.target, scope)
                conn = await exchange(pool, path, method, headers, body_state, settings)
            except ClientGone:
                return
            except ClientStalled:
                # The client's fault, not the replica's: no outlier failure.
                await _plain(send, 408, _STALLED, [(b"connection", b"close"), *extra])
                return
            except AttemptFailed as failed:
                # Details go to the log: endpoint names and addresses are internal.
                _log.warning(
                    "upstream %s (%s) failed (%s): %s",
                    endpoint.id,
                    endpoint.url,
                    failed.kind,
                    failed,
                )
                if detector is not None and failed.count:
                    detector.failure(endpoint.id, f"{failed.kind}: {failed}")
                following = None
                if (
                    record["attempts"] < settings.retries.tries
                    and retryable(failed.kind, method, body_state.replayable)
                    and not self._closed
                ):
                    following = self._decisions.next_replica(criteria, key, tried)
                    if following is not None and not budget.withdraw():
                        _log.warning("retry budget of route %s spent", rule.name)
                        following = None
                if following is None:
                    status, text = _POOL_FULL if failed.full else _STATUS[failed.kind]
                    await _plain(send, status, text, extra)
                    return
                endpoint = following
                record["failover"] = True
                continue
            break
        record["upstream_status"] = conn.status
        if detector is not None:
            if conn.status >= 500 and self._gateway.outlier.count_5xx:
                detector.failure(endpoint.id, f"status {conn.status}")
            else:
                detector.success(endpoint.id)
        if record["failover"] and self.debug_header is not None:
            extra = [(self.debug_header, debug_value(endpoint, decision).encode("latin-1"))]
        if settings.write_token is not None:
            extra = [*extra, *await self._token_headers(settings.write_token)]
        try:
            await self._respond(conn, pool, endpoint, scope, body_state, send, settings, extra)
        finally:
            body_state.unwatch()

    async def _token_headers(self, url: str) -> Headers:
        """The consistency token after a write route's response: header (and cookie)."""
        try:
            token = str(await atoken_from_url(url, _TOKEN_TIMEOUT)).encode("ascii")
        except Exception as exc:  # no token is safe: reads then go where they would anyway
            _log.warning("no consistency token from the primary: %s", exc)
            return []
        out: Headers = [(TOKEN_HEADER.encode("ascii"), token)]
        if self._gateway.token_cookie:
            cookie = f"{TOKEN_COOKIE}=".encode("ascii") + token
            out.append((b"set-cookie", cookie + b"; Path=/; HttpOnly; SameSite=Lax"))
        return out

    async def _respond(
        self,
        conn: Connection,
        pool: EndpointPool,
        endpoint: Endpoint,
        scope: Scope,
        body: RequestBody,
        send: Send,
        settings: RouteSettings,
        extra: Headers,
    ) -> None:
        headers = response_headers(conn.headers, conn.hop, conn.status)
        if settings.rewrite_location:
            headers = [
                (n, rewrite_location(v, pool.target, scope) if n == b"location" else v)
                for n, v in headers
            ]
        if extra:
            headers.extend(extra)
        start = {"type": "http.response.start", "status": conn.status, "headers": headers}
        if conn.complete:
            # The usual small answer: all there, one body message.
            data = conn.take_body()
            body.unwatch()
            pool.release(conn)
            await send(start)
            await send({"type": "http.response.body", "body": data, "more_body": False})
            return
        body.watch(conn)
        try:
            await send(start)
            while True:
                chunk = await conn.next_body(settings.idle_timeout)
                if chunk is None:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except ClientGone:
            return
        except (TimeoutError, UpstreamClosed, UpstreamProtocolError) as exc:
            detector = self._detector()
            if detector is not None:
                detector.failure(endpoint.id, f"mid-response: {exc!r}")
            raise UpstreamError(f"upstream {endpoint.id} failed mid-response: {exc!r}") from exc
        finally:
            body.unwatch()
            pool.release(conn)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # -- headers -----------------------------------------------------------------------


def _scope_user(scope: Scope) -> str | None:
    user = scope.get("user")
    return None if user is None else user_name(user)
