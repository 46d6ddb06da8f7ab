"""A hand-written RESP server that answers ``INFO replication`` badly, on purpose.

Each :class:`HostileRedis` listens on a loopback port and answers every
connection's ``INFO`` with one scripted misbehaviour (:data:`BEHAVIOURS`):
dripping a valid reply one byte every 0.3 s, a reply of the wrong type, a
5000-digit offset, a bulk length that is not a number, bytes that are not
UTF-8, a 300 MB reply (streamed, never allocated), a header that never ends.
It counts what it sent on each connection, so a test can show the client
stopped reading instead of swallowing the flood.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

STOP_AFTER = 20.0  # no connection is served longer than this, whatever the client does


def replica_info(offset: str = "100", link: str = "up", extra: str = "") -> bytes:
    """A replica's ``INFO replication`` text (a healthy one by default)."""
    return (
        "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:6379\r\n"
        f"master_link_status:{link}\r\nslave_repl_offset:{offset}\r\n{extra}"
    ).encode()


def bulk(body: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(body), body)


Send = Callable[[bytes], bool]  # sends bytes; False once the client is gone or time is up


def _drip(send: Send) -> None:
    for byte in bulk(replica_info()):
        if not send(bytes([byte])):
            return
        time.sleep(0.3)


def _flood(send: Send) -> None:
    # Announce 300 MB and stream it in chunks: the server never holds it all.
    if not send(b"$300000000\r\n"):
        return
    chunk = b"a" * 65536
    for _ in range(300_000_000 // len(chunk)):
        if not send(chunk):
            return


def _endless_header(send: Send) -> None:
    chunk = b"1" * 4096
    if send(b"$"):
        while send(chunk):
            pass


class HangUp(Exception):
    """Raised by a behaviour to close the connection right after its answer."""


def _fixed(reply: bytes, hang_up: bool = False) -> Callable[[Send], None]:
    def answer(send: Send) -> None:
        send(reply)
        if hang_up:
            raise HangUp

    return answer


#: name -> how the server answers INFO (and the words the probe's detail must contain).
BEHAVIOURS: dict[str, tuple[Callable[[Send], None], str]] = {
    "drip": (_drip, "timed out"),
    "integer": (_fixed(b":5\r\n"), "unexpected reply"),
    "array": (_fixed(b"*1\r\n$2\r\nhi\r\n"), "unexpected reply"),
    "huge-offset": (_fixed(bulk(replica_info(offset="9" * 5000))), "malformed slave_repl_offset"),
    "superscript-offset": (_fixed(bulk(replica_info(offset="\u00b2"))), "malformed"),
    "bad-length": (_fixed(b"$abc\r\n"), "bad bulk length"),
    "not-utf8": (_fixed(bulk(replica_info() + b"x:\xff\xfe\r\n")), "not UTF-8"),
    "nil": (_fixed(b"$-1\r\n"), "nil reply"),
    "oversized": (_flood, "exceeds the cap"),
    "endless-header": (_endless_header, "header longer"),
    "short-then-close": (_fixed(b"$100\r\nrole:sl", hang_up=True), "connection closed"),
    "server-error": (_fixed(b"-ERR unknown command\r\n"), "server error"),
}


#: Misbehaviours that only make sense for a master.
MASTER_ONLY: dict[str, tuple[Callable[[Send], None], str]] = {
    "huge-master-offset": (
        _fixed(
            bulk(b"# Replication\r\nrole:master\r\nmaster_repl_offset:" + b"9" * 5000 + b"\r\n")
        ),
        "malformed master_repl_offset",
    ),
}


class HostileRedis:
    """A RESP server answering ``INFO`` with ``behaviour`` (in :data:`BEHAVIOURS` or
    :data:`MASTER_ONLY`)."""

    def __init__(self, behaviour: str) -> None:
        self.answer = {**BEHAVIOURS, **MASTER_ONLY}[behaviour][0]
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent: list[int] = []  # bytes sent per finished connection
        self.threads: list[threading.Thread] = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        sent = [0]
        until = time.monotonic() + STOP_AFTER

        def send(data: bytes) -> bool:
            if self.stop.is_set() or time.monotonic() > until:
                return False
            try:
                conn.sendall(data)
            except OSError:
                return False  # the client hung up
            sent[0] += len(data)
            return True

        with conn:
            conn.settimeout(STOP_AFTER)
            request = b""
            with contextlib.suppress(OSError, HangUp):
                while b"replication\r\n" not in request.lower() and len(request) < 4096:
                    data = conn.recv(4096)
                    if not data:
                        return
                    request += data
                self.answer(send)
                # Hold the connection open until the client closes it.
                conn.settimeout(0.05)
                while not self.stop.is_set() and time.monotonic() < until:
                    try:
                        if not conn.recv(4096):
                            break
                    except TimeoutError:
                        continue
        with self.lock:
            self.sent.append(sent[0])

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self.acceptor.join(5)
        for thread in self.threads:
            thread.join(5)
