"""One access-log line (and request metrics) per proxied request, with its routing decision.

:class:`AccessLog` is a pure ASGI wrapper around the data-plane proxy. It keeps
no per-request state beyond the call: the status and byte count live in the
``send`` closure of the request; the decision is the record the gateway proxy
leaves in ``scope["extensions"]["selectors_lib"]`` once it handled the
request: ``{"rule": str, "endpoint": str, "key_source": str | None,
"attempts": int, "failover": bool, "upstream_status": int | None}``. A request
the proxy never routed (refused before routing) logs ``-`` for each.

Request metrics are counted per request into a list and folded into the
Prometheus metrics in batches (:meth:`RequestMetrics.flush`, before each
scrape and every 200 ms): a Prometheus ``observe`` takes a lock and walks the
buckets, which per request cost as much as the log line.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

__all__ = [
    "RECORD_KEY",
    "AccessLog",
    "LineSink",
    "RequestMetrics",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The key of the proxy's decision record in ``scope["extensions"]``.
RECORD_KEY = "selectors_lib"

# A request target is client-controlled: the line keeps at most this much of it.
_MAX_TARGET = 1024
_STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# Anything but visible ASCII, a quote or a backslash needs escaping.
_UNSAFE = re.compile(rb'[^\x21-\x7e]|["\\]')
# Names come from configuration: few, and each one is escaped once.
_FIELDS: dict[str, str] = {}
_MAX_FIELDS = 4096


def _escaped(raw: bytes) -> str:
    # Control bytes, quotes and non-ASCII are escaped: one request, one line,
    # and no byte of the client's can fake a field of its own.
    cut = raw[:_MAX_TARGET]
    if _UNSAFE.search(cut) is None:
        text = cut.decode("ascii")  # the usual case: nothing to escape
    else:
        text = cut.decode("latin-1").encode("unicode_escape").decode("ascii")
        text = text.replace('"', '\\"')
    return text + ("..." if len(raw) > _MAX_TARGET else "")


def _number(value: object) -> str:
    return str(value) if type(value) is int else _field(value)


# True == 1 as a dict key: the flags are looked up by identity of the bool only.
_FLAGS = {True: "1", False: "0", None: "-"}
_METHODS: dict[str, str] = {}


def _decision_fields(decided: tuple[Any, ...]) -> str:
    rule, endpoint, key_source, attempts, failover, upstream_status = decided
    flag = _FLAGS.get(failover) if type(failover) is bool or failover is None else None
    return (
        f" rule={_field(rule)} endpoint={_field(endpoint)} key_source={_field(key_source)}"
        f" attempts={_number(attempts)} failover={flag or _field(failover)}"
        f" upstream_status={_number(upstream_status)}"
    )


# The decision fields of a line, by the record's values (bounded like _FIELDS).
_DECISIONS: dict[tuple[Any, ...], str] = {}


def _field(value: object) -> str:
    if value is None:
        return "-"
    if value is True:
        return "1"
    if value is False:
        return "0"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    known = _FIELDS.get(text)
    if known is not None:
        return known
    # Rule and endpoint names come from configuration; keep them one token each.
    if text and all(c.isprintable() and not c.isspace() and c != '"' for c in text):
        shown = text
    else:
        shown = '"' + text.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if len(_FIELDS) < _MAX_FIELDS:
        _FIELDS[text] = shown
    return shown


_UNKNOWN: dict[str, Any] = dict.fromkeys(
    ("rule", "endpoint", "key_source", "attempts", "failover", "upstream_status")
)


class RequestMetrics:
    """Request counts by status class and request durations, in a Prometheus registry.

    :meth:`record` only notes the request; :meth:`flush` folds what was noted
    into the metrics. Both run on the worker's event loop (not thread-safe
    against each other).

    Args:
        registry: A ``prometheus_client.CollectorRegistry``.
        namespace: Prefix of the metric names.
    """

    def __init__(self, registry: Any, *, namespace: str = "selectors_gateway") -> None:
        from prometheus_client import Counter, Histogram

        self.requests = Counter(
            f"{namespace}_requests",
            "Requests answered by the gateway, by status class (2xx, 5xx, ...).",
            ("status_class",),
            registry=registry,
        )
        self.duration = Histogram(
            f"{namespace}_request_duration_seconds",
            "Time from request to the end of the response, in seconds.",
            registry=registry,
            buckets=_DURATION_BUCKETS,
        )
        # Children resolved once: resolving labels takes a lock.
        self._by_class = [self.requests.labels(c).inc for c in _STATUS_CLASSES]
        self._bounds = [*_DURATION_BUCKETS, math.inf]
        self._statuses: list[int] = []
        self._seconds: list[float] = []

    def record(self, status: int, seconds: float) -> None:
        """Note one answered request (counted at the next :meth:`flush`)."""
        self._statuses.append(status)
        self._seconds.append(seconds)

    def flush(self) -> None:
        """Fold the requests noted since the last flush into the metrics."""
        statuses, self._statuses = self._statuses, []
        seconds, self._seconds = self._seconds, []
        if not statuses:
            return
        classes = [0] * len(_STATUS_CLASSES)
        for status in statuses:
            index = status // 100 - 1
            if 0 <= index < len(classes):
                classes[index] += 1
        for inc, count in zip(self._by_class, classes, strict=True):
            if count:
                inc(count)
        from selectors_lib.prometheus import observe_all

        observe_all(self.duration, self._bounds, seconds)


class LineSink:
    """Access-log lines to a file descriptor, written in batches.

    A write per request costs a system call; lines are collected and written
    when 16 KiB have gathered or :meth:`flush` is called (the worker calls it
    every 200 ms and at exit). Each ``write`` carries whole lines and at most
    4 KiB (``PIPE_BUF``), so lines of several workers sharing one pipe or
    ``O_APPEND`` file never interleave.

    Args:
        fd: Where the lines go (stdout: 1).
    """

    def __init__(self, fd: int = 1) -> None:
        self.fd = fd
        self._lines: list[bytes] = []
        self._size = 0

    def write(self, line: str) -> None:
        """Queue one line (without its newline)."""
        data = line.encode("utf-8", "backslashreplace") + b"\n"
        self._lines.append(data)
        self._size += len(data)
        if self._size >= _BATCH:
            self.flush()

    def flush(self) -> None:
        """Write every queued line now."""
        lines, self._lines, self._size = self._lines, [], 0
        chunk: list[bytes] = []
        size = 0
        for data in lines:
            if chunk and size + len(data) > _PIPE_BUF:
                self._write(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(data)
            size += len(data)
        if chunk:
            self._write(b"".join(chunk))

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError:
            pass  # a closed stdout must not fail requests; the metrics still count


#: Requests whose lines may wait to be formatted (see :meth:`AccessLog.flush`).
_FORMAT_EVERY = 512
_BATCH = 16 * 1024
_PIPE_BUF = 4096


class AccessLog:
    """Wrap an ASGI app: one log line per HTTP request, with the routing decision.

    Args:
        app: The proxy.
        write: Takes each line (without newline), e.g. :meth:`LineSink.write`.
        fmt: ``"text"`` (one ``key=value`` line) or ``"json"`` (one object a line);
            ``"off"`` writes nothing (metrics are still kept).
        metrics: Request metrics to keep, if any.
    """

    def __init__(
        self,
        app: ASGIApp,
        write: Callable[[str], object],
        *,
        fmt: str = "text",
        metrics: RequestMetrics | None = None,
    ) -> None:
        if fmt not in ("text", "json", "off"):
            raise ValueError(f"access log format must be text, json or off, got {fmt!r}")
        self.app = app
        self.write = write
        # Per request: client, method, raw path, path, query, version, record,
        # status, bytes, seconds (the arguments of _line).
        self._pending: list[tuple[Any, ...]] = []
        self._client: object = None
        self._peer = "-"
        self.fmt = fmt
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0
        sent = 0

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            else:
                status = int(message.get("status", 0))
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            seconds = time.perf_counter() - start
            # 499 as nginx logs it: the exchange ended without any response.
            if self.metrics is not None and status:
                self.metrics.record(status, seconds)
            if self.fmt != "off":
                # What the line needs, not the scope: the request's objects
                # are freed now, not kept alive (and scanned by the GC) until
                # the next flush.
                extensions = scope.get("extensions")
                pending = self._pending
                pending.append(
                    (
                        scope.get("client"),
                        scope.get("method", "-"),
                        scope.get("raw_path"),
                        scope.get("path", ""),
                        scope.get("query_string"),
                        scope.get("http_version", "1.1"),
                        extensions.get(RECORD_KEY)
                        if type(extensions) is dict or isinstance(extensions, Mapping)
                        else None,
                        status or 499,
                        sent,
                        seconds,
                    )
                )
                if len(pending) >= _FORMAT_EVERY:
                    self.flush()

    def flush(self) -> None:
        """Format and hand over the lines of the requests answered since the last flush.

        Lines are formatted in batches, off each request's path: formatting in
        a loop costs half what it costs between requests (measured: 3.5 against
        7.5 us a line). The worker flushes every 200 ms; at most 512
        lines wait.
        """
        pending, self._pending = self._pending, []
        line, write = self._line, self.write
        for request in pending:
            write(line(*request))

    def _line(
        self,
        client: Any,
        method: Any,
        raw: Any,
        path: Any,
        query: Any,
        version: Any,
        record: Any,
        status: int,
        sent: int,
        seconds: float,
    ) -> str:
        if client is self._client:
            peer = self._peer  # the same connection's requests: one tuple, one string
        else:
            peer = f"{client[0]}:{client[1]}" if client else "-"
            self._client, self._peer = client, peer
        if not isinstance(raw, bytes):
            raw = str(path).encode("utf-8")
        target = raw + b"?" + query if query else raw
        method = str(method)
        get = record.get if type(record) is dict or isinstance(record, Mapping) else _UNKNOWN.get
        if self.fmt == "json":
            return json.dumps(
                {
                    "client": peer,
                    "method": method,
                    "target": target[:_MAX_TARGET].decode("latin-1"),
                    "http_version": version,
                    "status": status,
                    "bytes": sent,
                    "duration_ms": round(seconds * 1000, 3),
                    **{name: get(name) for name in _UNKNOWN},
                },
                separators=(",", ":"),
            )
        shown_method = _METHODS.get(method)
        if shown_method is None:
            shown_method = _escaped(method.encode("latin-1"))
            if len(_METHODS) < _MAX_FIELDS:
                _METHODS[method] = shown_method
        decided = (
            get("rule"),
            get("endpoint"),
            get("key_source"),
            get("attempts"),
            get("failover"),
            get("upstream_status"),
        )
        # Requests repeat few decisions: each one's fields are escaped once.
        # Cached only with the record's own types (1 == True == 1.0 as keys).
        attempts, failover, upstream = decided[3:]
        if (
            type(attempts) is int
            and type(failover) is bool
            and (upstream is None or type(upstream) is int)
        ):
            shown = _DECISIONS.get(decided)
            if shown is None:
                shown = _decision_fields(decided)
                if len(_DECISIONS) < _MAX_FIELDS:
                    _DECISIONS[decided] = shown
        else:
            shown = _decision_fields(decided)
        return (
            f'{peer} "{shown_method} {_escaped(target)} HTTP/{version}" '
            f"{status} {sent} {seconds * 1000:.2f}ms{shown}"
        )
