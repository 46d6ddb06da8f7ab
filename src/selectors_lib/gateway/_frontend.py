"""The HTTP protocol ``selectors-lib serve`` speaks to clients: uvicorn's, with a bounded head.

uvicorn's httptools protocol sets no limit on a request head, and httptools
grows a header line by concatenation until the line ends: one client sending
a header line without end costs the worker memory and quadratic CPU time, on
the event loop every other request shares. This subclass answers ``431`` and
closes the connection once a head passes :data:`MAX_REQUEST_HEAD` bytes (h11,
uvicorn's other protocol, refuses past 16 KiB by itself).
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_REQUEST_HEAD", "http_protocol"]

#: Bytes a request head (request line and header fields) may take.
MAX_REQUEST_HEAD = 64 * 1024

_TOO_LARGE = b"request head too large\n"
_ANSWER = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TOO_LARGE), _TOO_LARGE)
)


def http_protocol() -> Any:
    """uvicorn's ``http=`` setting for serve: the bounded httptools protocol, else ``"auto"``."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # no httptools: uvicorn uses h11, which has its own limit
        return "auto"

    class BoundedHeadProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, refusing request heads over the limit."""

        _in_head = True
        _head_bytes = 0

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head = True

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._head_bytes = 0
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if not self._in_head or self.transport.is_closing():
                return
            # Counted after parsing, so a packet that completes a head (and
            # brings body bytes along) never counts against it.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_REQUEST_HEAD:
                self.logger.warning("request head over %d bytes: refused", MAX_REQUEST_HEAD)
                cycle = getattr(self, "cycle", None)
                if cycle is None or cycle.response_complete:
                    self.transport.write(_ANSWER)
                self.transport.close()

    return BoundedHeadProtocol
