"""Real local HTTP servers for the health-probe tests."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Backend:
    """A tiny HTTP server whose health answer the test controls."""

    def __init__(self) -> None:
        self.status = 200
        self.delay = 0.0
        self.paths: list[str] = []
        self.gate: threading.Barrier | None = None
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                backend.paths.append(self.path)
                if backend.delay:
                    time.sleep(backend.delay)
                if backend.gate is not None:
                    backend.gate.wait()
                body = b"ok\n" * 1000
                self.send_response(backend.status)
                if backend.status in (301, 302):
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
