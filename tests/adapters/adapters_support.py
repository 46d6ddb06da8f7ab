"""Real servers on loopback for the adapter tests (helpers; fixtures in conftest.py).

Backends are tiny ASGI apps served by uvicorn in a thread; each answers with
who it is and what it received, so a test can see where a request landed and
what reached it. Servers bind a free loopback port themselves (no race) and are
shut down cleanly at the end of the session.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import threading
import urllib.parse
import wsgiref.simple_server
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any

import uvicorn

Scope = dict[str, Any]


@contextmanager
def serve_asgi(
    app: Any, *, lifespan: str = "off", proxy: bool = False, http: str = "h11"
) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yield its base URL.

    ``proxy=True`` configures uvicorn as docs/asgi.md recommends for
    :class:`SelectorsProxy`: no ``Server``/``Date`` headers of its own (the
    upstream's pass through) and no rewriting of the client address from
    ``X-Forwarded-For`` (the proxy appends to that header itself). ``http``:
    uvicorn's HTTP protocol (``h11`` or ``httptools``).
    """
    # Port 0: the kernel picks a free port when uvicorn binds (no race); read
    # it back from the listening socket. (Handing uvicorn a pre-bound socket
    # instead made every request wait ~40 ms on this machine.)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        http=http,
        loop="asyncio",
        ws="none",
        lifespan=lifespan,
        log_config=None,
        log_level="critical",
        access_log=False,
        timeout_graceful_shutdown=1,
        server_header=not proxy,
        date_header=not proxy,
        proxy_headers=not proxy,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():  # pragma: no cover - only when startup fails
            raise RuntimeError("uvicorn failed to start")
        threading.Event().wait(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class _ThreadingWSGIServer(ThreadingMixIn, wsgiref.simple_server.WSGIServer):
    daemon_threads = True


class _QuietHandler(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_wsgi(app: Callable[..., Any]) -> Iterator[str]:
    """Serve ``app`` with wsgiref (threaded) on a free loopback port; yield its URL."""
    server = wsgiref.simple_server.make_server(
        "127.0.0.1", 0, app, server_class=_ThreadingWSGIServer, handler_class=_QuietHandler
    )
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def echo_app(name: str) -> Callable[..., Any]:
    """A backend that says who it is and what it got.

    Paths: ``/stream?n=K`` streams K chunks; ``/slow?s=F`` answers after F
    seconds; ``/hop`` answers with hop-by-hop headers; ``/truncated`` fails
    after part of its body; anything else echoes
    the method, path, query, headers and a digest of the body (read chunk by chunk).
    """

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        query = urllib.parse.parse_qs(scope["query_string"].decode())
        path = scope["path"]
        if path.endswith("/slow"):
            await asyncio.sleep(float(query.get("s", ["2"])[0]))
        if path.endswith("/truncated"):
            # Chunked (no length), sends 10 bytes, then the server drops the
            # connection: only a missing last chunk tells the body is incomplete.
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
            raise RuntimeError("backend failed mid-response (on purpose)")
        if path.endswith("/stream"):
            n = int(query.get("n", ["3"])[0])
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"x-backend", name.encode())],
                }
            )
            for i in range(n):
                await send(
                    {
                        "type": "http.response.body",
                        "body": f"chunk {i}\n".encode(),
                        "more_body": True,
                    }
                )
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        digest = hashlib.sha256()
        size = chunks = 0
        while True:
            message = await receive()
            body = message.get("body", b"")
            if body:
                chunks += 1
            digest.update(body)
            size += len(body)
            if not message.get("more_body", False):
                break
        payload = json.dumps(
            {
                "backend": name,
                "method": scope["method"],
                "path": path,
                "raw_path": scope["raw_path"].decode("latin-1"),
                "query": scope["query_string"].decode("latin-1"),
                "headers": [
                    [k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]
                ],
                "body_size": size,
                "body_sha256": digest.hexdigest(),
            }
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
            (b"x-backend", name.encode()),
        ]
        if path.endswith("/hop"):
            headers += [
                (b"connection", b"x-private-hop"),
                (b"x-private-hop", b"secret"),
                (b"keep-alive", b"timeout=5"),
                (b"set-cookie", b"session=abc; Path=/"),
            ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    return app


def dead_url() -> str:
    """A loopback URL nothing listens on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def routing_config(backends: dict[str, str]) -> dict[str, Any]:
    """The configuration most adapter tests route with."""
    return {
        "version": 1,
        "endpoints": dict(backends),
        "routes": [
            {"name": "deck", "priority": 10, "match": {"origin": "deck"}, "target": "ro-2"},
            {"name": "keel", "priority": 5, "match": {"application": "keel"}, "target": "ro-1"},
            {"name": "broken", "match": {"application": "broken"}, "target": "dead"},
            {
                "name": "by-user",
                "match": {"authenticated_user": {"present": True}},
                "target": {"endpoints": ["ro-1", "ro-2"], "hash_on": ["authenticated_user"]},
            },
            {
                "name": "strict",
                "match": {"application": "strict"},
                "target": {
                    "endpoints": ["ro-1", "ro-2"],
                    "hash_on": ["execution_id"],
                    "missing_key": "reject",
                },
            },
            {"name": "main", "default": True, "target": "ro-1"},
        ],
    }
