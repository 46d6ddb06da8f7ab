"""Backends for the gateway tests: uvicorn in a process of its own, so a test can kill or stop it.

Run as ``python gateway_backends.py NAME PORT``. Paths: ``/drip`` streams a
line every 50 ms for up to a minute; ``/slow?s=F`` answers after F seconds;
``/status/N`` answers status N; anything else answers the backend's name and
the path it got. :class:`Backend` starts one, waits until it accepts, and
kills, stops or restarts it on the same port.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

Scope = dict[str, Any]


_Server = TypeVar("_Server", bound=socketserver.BaseServer)


@contextmanager
def running(server: _Server) -> Iterator[_Server]:
    """Serve ``server`` (a ``socketserver`` server) in a thread until the block ends."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def next_head(sock: socket.socket, data: bytes) -> tuple[bytes, bytes] | None:
    """Read from ``sock`` until a request head is whole: ``(head, what follows)``.

    Args:
        sock: The connection.
        data: Bytes already read past the previous head.

    Returns:
        The head (without its blank line) and the bytes after it, or ``None``
        when the peer closed first.
    """
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def make_app(name: str) -> Any:
    """The backend's ASGI app."""

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        query = urllib.parse.parse_qs(scope["query_string"].decode())
        if path == "/drip":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for i in range(1200):
                await send({"type": "http.response.body", "body": b"%d\n" % i, "more_body": True})
                await asyncio.sleep(0.05)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if path == "/slow":
            await asyncio.sleep(float(query.get("s", ["2"])[0]))
        status = int(path.rsplit("/", 1)[1]) if path.startswith("/status/") else 200
        body = f"{name} {path}".encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-length", str(len(body)).encode()),
                    (b"x-backend", name.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return app


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Backend:
    """A backend process on a fixed loopback port."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._placeholder: socket.socket | None = None

    def start(self) -> Backend:
        """Start the process and wait (at most 20 s) until it accepts connections."""
        self._release_port()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.process = subprocess.Popen(
            [sys.executable, __file__, self.name, str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"backend {self.name} exited with {self.process.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"backend {self.name} did not start")

    def kill(self) -> None:
        """SIGKILL: connections are reset, new ones refused.

        The port stays reserved until :meth:`start` (bound, never listening:
        connections are still refused). Left free, any program on the machine
        binding port 0 could take it and answer the proxy in the dead
        backend's place, which is a test of something else.
        """
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None
            placeholder = socket.socket()
            try:
                placeholder.bind(("127.0.0.1", self.port))
            except OSError:  # taken already: the test will say what it met
                placeholder.close()
            else:
                self._placeholder = placeholder

    def _release_port(self) -> None:
        if self._placeholder is not None:
            self._placeholder.close()
            self._placeholder = None

    def stop(self) -> None:
        """SIGSTOP: connections are accepted by the kernel, never answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def cont(self) -> None:
        """SIGCONT after :meth:`stop`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        """Stop the process whatever its state."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)
            self.kill()
        self._release_port()


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(
        make_app(sys.argv[1]),
        host="127.0.0.1",
        port=int(sys.argv[2]),
        log_level="critical",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
