"""Real processes on loopback for the ``selectors-lib serve`` tests.

Backends are threaded ``http.server`` instances (each says who it is); the
gateway is ``python -m selectors_lib serve`` in a subprocess on ports the
kernel picks, read back from its start-up log line. Every wait is bounded.
"""

from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
_LISTENING = re.compile(r"listening on http://([\d.]+):(\d+) \(admin http://([\d.]+):(\d+)\)")


class Backend:
    """A threaded HTTP backend: ``/slow?s=F`` answers after F seconds, anything else at once.

    Every answer is ``<name> <path>``; :attr:`started` counts requests received.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = 0
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with backend.lock:
                    backend.started += 1
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                if self.path.startswith("/slow"):
                    time.sleep(float(query.get("s", ["1"])[0]))
                body = f"{backend.name} {self.path}\n".encode()
                try:
                    self.send_response(200)
                    self.send_header("content-type", "text/plain")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the proxy gave up on us (a cancelled drain)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """One GET on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


class Gateway:
    """A running ``selectors-lib serve`` process."""

    def __init__(self, process: subprocess.Popen[bytes], out: Path, err: Path) -> None:
        self.process = process
        self.out = out
        self.err = err
        match = wait_for(self._listening, "serve to listen")
        self.port = int(match.group(2))
        self.admin_port = int(match.group(4))

    def _listening(self) -> re.Match[str] | None:
        if self.process.poll() is not None:
            raise AssertionError(f"serve exited early:\n{self.stderr()}")
        return _LISTENING.search(self.stderr())

    def stderr(self) -> str:
        return self.err.read_text("utf-8", "replace")

    def access_lines(self) -> list[str]:
        return self.out.read_text("utf-8", "replace").splitlines()

    def get(self, path: str, user: str | None = None) -> tuple[int, str]:
        return get(self.port, path, {"X-SPINNAKER-USER": user} if user else None)

    def ready(self) -> tuple[int, dict[str, Any]]:
        status, body = get(self.admin_port, "/readyz")
        return status, json.loads(body)

    def metrics(self) -> str:
        status, body = get(self.admin_port, "/metrics")
        assert status == 200
        return body

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)


@contextmanager
def serve(config: Path, tmp: Path, *args: str) -> Iterator[Gateway]:
    """Run ``selectors-lib serve`` on ``config``; stop it (and wait) afterwards."""
    out, err = tmp / "access.log", tmp / "serve.err"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "selectors_lib",
                "serve",
                str(config),
                "--port",
                "0",
                "--admin-port",
                "0",
                "--trust-user-header",
                *args,
            ],
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=tmp,
        )
    try:
        yield Gateway(process, out, err)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def write_config(path: Path, endpoints: dict[str, str], pool: list[str], **extra: Any) -> None:
    """A configuration (JSON, so no PyYAML is needed) with one default pool hashed on the user."""
    data: dict[str, Any] = {
        "version": 1,
        "endpoints": endpoints,
        "routes": [
            {
                "name": "by-user",
                "default": True,
                "target": {"endpoints": pool, "hash_on": ["authenticated_user"]},
            }
        ],
        **extra,
    }
    # Write then rename: a reload never reads a half-written file.
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(data), "utf-8")
    partial.replace(path)
