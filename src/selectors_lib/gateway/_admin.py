"""The admin endpoints of ``selectors-lib serve``: liveness, readiness, metrics.

Served on a port of their own (``--admin-port``), never on the proxied port:
no proxied path can be shadowed by them, and they can be firewalled apart.

* ``GET /livez``: 200 while the worker's event loop answers.
* ``GET /readyz``: 200 once the proxy listens and until draining starts, 503
  otherwise; the JSON body says why, and which configuration the worker
  serves (generation, SHA-256 of the file, last reload error).
* ``GET /metrics``: Prometheus text: the router metrics of
  :mod:`selectors_lib.prometheus` and the gateway's request metrics. With
  several workers the values are summed over all workers
  (``prometheus_client`` multiprocess mode); gauges carry a ``pid`` label.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

__all__ = ["AdminApp", "GatewayStatus"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class GatewayStatus(Protocol):
    """What the admin endpoints report about a worker."""

    @property
    def ready(self) -> bool:
        """True while the worker accepts and routes requests."""

    def status(self) -> dict[str, Any]:
        """A JSON-ready description of the worker's state."""

    def flush(self) -> None:
        """Bring the metrics up to date (called before each scrape)."""


class AdminApp:
    """An ASGI app answering ``/livez``, ``/readyz`` and ``/metrics``.

    Args:
        gateway: The worker whose state is reported.
        registry: The ``prometheus_client`` registry of this worker.
    """

    def __init__(self, gateway: GatewayStatus, registry: Any) -> None:
        from prometheus_client import CollectorRegistry, exposition

        self.gateway = gateway
        self._generate = exposition.generate_latest
        self._content_type = exposition.CONTENT_TYPE_LATEST
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            # Several workers: every scrape sums what all of them wrote.
            from prometheus_client import multiprocess

            self.registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.registry, path=directory)  # type: ignore[no-untyped-call]
        else:
            self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection."""
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _answer(send, 405, b"method not allowed\n", "text/plain; charset=utf-8")
            return
        if path == "/livez":
            await _answer(send, 200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/readyz":
            body = json.dumps(self.gateway.status(), sort_keys=True).encode("utf-8") + b"\n"
            status = 200 if self.gateway.ready else 503
            await _answer(send, status, body, "application/json")
        elif path == "/metrics":
            self.gateway.flush()
            await _answer(send, 200, self._generate(self.registry), self._content_type)
        else:
            await _answer(send, 404, b"not found: try /livez, /readyz or /metrics\n", "text/plain")


async def _answer(send: Send, status: int, body: bytes, content_type: str) -> None:
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
