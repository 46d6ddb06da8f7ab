"""A minimal, bounded Redis client for one question: ``INFO replication``.

A health probe talks to servers it does not trust to be well: one that drips
its reply a byte at a time, sends a reply of the wrong type, claims a
300 MB bulk string, or sends bytes that are not UTF-8 must fail *its own*
check, quickly and cheaply, and never the probe's other endpoints. A general
client (redis-py) bounds each socket read, not the whole exchange, reads a
bulk string of whatever size the server announces, and raises errors other
than its own on odd replies. This one:

- has one **total deadline** per exchange (connect, TLS, ``AUTH``, ``INFO``,
  the whole reply), so dripping cannot outlast it;
- **caps the reply** (``MAX_REPLY_BYTES``): a larger announced length is
  refused before a byte of it is read, so memory never follows the server;
- accepts only the reply types it expects and raises :class:`RespError`
  (an ``OSError``) for anything else: wrong type, bad length, bad bytes,
  server error, deadline.

Each exchange uses a fresh connection: a probe runs once every few seconds, and
a connection abandoned mid-reply can never desynchronise the next check. The
protocol state machine (:class:`ReplyParser`) is shared by the blocking and the
asyncio functions, so both monitors judge a reply the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import re
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable

import attrs

from selectors_lib._errors import SelectorsError

__all__ = [
    "MAX_REPLY_BYTES",
    "RedisTarget",
    "ReplyParser",
    "RespError",
    "ainfo_replication",
    "info_replication",
    "parse_info",
    "parse_target",
]

#: The largest ``INFO replication`` reply accepted, in bytes. A real one is a few
#: hundred bytes plus about 80 per attached replica.
MAX_REPLY_BYTES = 1 << 20
#: The longest reply header line (``$1048576``, ``-ERR ...``) kept; more is refused.
_MAX_HEADER = 512
_LENGTH = re.compile(rb"-?[0-9]{1,10}")
_CHUNK = 65536


class RespError(SelectorsError, OSError):
    """The server's reply was not the expected one (or did not come in time).

    An ``OSError`` like every other way a probe's exchange fails; the probe turns
    it into a bad observation of that endpoint and never lets it escape.
    """


@attrs.frozen
class RedisTarget:
    """Where and how to reach one Redis server (parsed from its URL).

    Args:
        host: Host name or address (empty for a Unix socket).
        port: TCP port.
        path: Unix socket path (empty for TCP).
        tls: Whether to speak TLS (``rediss://``).
        username: ACL user name for ``AUTH`` (may be empty).
        password: Password for ``AUTH`` (empty: no ``AUTH``).
    """

    host: str
    port: int
    path: str = ""
    tls: bool = False
    username: str = ""
    password: str = attrs.field(default="", repr=False)


def parse_target(url: str) -> RedisTarget:
    """Parse ``redis://``, ``rediss://`` or ``unix://`` URL into a :class:`RedisTarget`.

    Args:
        url: ``redis[s]://[[user]:password@]host[:port][/db]`` or
            ``unix:///path/to/socket[?password=...]``.

    Returns:
        The target (the database number is irrelevant to ``INFO`` and ignored).

    Raises:
        ValueError: The URL cannot be used.
    """
    parts = urllib.parse.urlsplit(url)
    username = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    if parts.scheme == "unix":
        query = urllib.parse.parse_qs(parts.query)
        password = password or (query.get("password") or [""])[0]
        if not parts.path:
            raise ValueError(f"no socket path in {url!r}")
        return RedisTarget("", 0, parts.path, False, username, password)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(f"not a redis:// URL: {url!r}")
    port = parts.port or 6379  # ValueError for a port out of range
    return RedisTarget(parts.hostname, port, "", parts.scheme == "rediss", username, password)


def _command(*args: str) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _request(target: RedisTarget) -> tuple[bytes, int]:
    """The bytes to send and how many replies they ask for (AUTH, then INFO)."""
    if not target.password:
        return _command("INFO", "replication"), 1
    auth = (
        ("AUTH", target.username, target.password) if target.username else ("AUTH", target.password)
    )
    return _command(*auth) + _command("INFO", "replication"), 2


class ReplyParser:
    """Incremental parser for the replies to :func:`_request`: ``+OK`` then a bulk string.

    Feed it bytes as they arrive; :attr:`done` turns true with :attr:`body`
    set once the last expected reply is complete. Every check is on what has
    arrived so far, so a bad reply is refused as soon as it shows.

    Args:
        replies: How many replies to expect (the last one is the bulk string).
        max_bytes: The largest bulk string accepted.
    """

    def __init__(self, replies: int, max_bytes: int = MAX_REPLY_BYTES) -> None:
        self._left = replies
        self._max = max_bytes
        self._buffer = bytearray()
        self._length: int | None = None  # the current bulk string's length, once known
        self.body: bytes | None = None

    @property
    def done(self) -> bool:
        """Whether every expected reply has arrived."""
        return self._left == 0

    def feed(self, data: bytes) -> None:
        """Take the next bytes from the server.

        Raises:
            RespError: The reply is malformed, of the wrong type, too large, or an error.
        """
        if self.done:
            return
        self._buffer += data
        while not self.done and self._step():
            pass

    def _step(self) -> bool:
        """Consume one complete reply from the buffer if there is one."""
        if self._length is None:
            end = self._buffer.find(b"\r\n", 0, _MAX_HEADER + 2)
            if end < 0:
                if len(self._buffer) > _MAX_HEADER:
                    raise RespError(f"reply header longer than {_MAX_HEADER} bytes")
                return False
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 2]
            self._header(line)
            return True
        if len(self._buffer) < self._length + 2:
            return False
        if self._buffer[self._length : self._length + 2] != b"\r\n":
            raise RespError("bulk reply not terminated by CRLF")
        self.body = bytes(self._buffer[: self._length])
        del self._buffer[: self._length + 2]
        self._length = None
        self._finish()
        return True

    def _header(self, line: bytes) -> None:
        kind, rest = line[:1], line[1:]
        if kind == b"-":
            raise RespError(f"server error: {_printable(rest)}")
        last = self._left == 1
        if kind == b"+" and not last:
            self._finish()  # +OK to AUTH
            return
        if kind != b"$" or not last:
            raise RespError(f"unexpected reply {_printable(line)} (expected a bulk string)")
        if not _LENGTH.fullmatch(rest):
            raise RespError(f"bad bulk length {_printable(rest)}")
        length = int(rest)
        if length < 0:
            raise RespError("nil reply")
        if length > self._max:
            raise RespError(f"reply of {length} bytes exceeds the cap of {self._max}")
        self._length = length

    def _finish(self) -> None:
        # Bytes after the last reply are ignored (the connection is closed next):
        # whether they arrive with it or later is up to the network, so refusing
        # them would make the verdict depend on timing.
        self._left -= 1


#: Name lookups of asyncio checks in flight at most (each on a daemon thread).
_LOOKUPS = threading.BoundedSemaphore(8)
#: Checks waiting on one lookup at most; more fail at once.
_MAX_WAITERS = 8
_Notify = Callable[[list[str], OSError | None], None]
#: The lookup in flight for each (host, port), as the callbacks of its waiters: a
#: name whose lookup hangs holds one thread and one slot, however many rounds
#: ask for it, instead of a new one per round until no other name can be looked up.
_PENDING: dict[tuple[str, int], list[_Notify]] = {}
_PENDING_LOCK = threading.Lock()


async def _aconnect(target: RedisTarget) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to a TCP target, resolving its name off the event loop's executor.

    ``asyncio.open_connection`` resolves names on the loop's default executor,
    which the application shares: a lookup that hangs (no socket timeout bounds
    it) would hold one of its threads per check. Here a lookup runs on a daemon
    thread of its own, a few at most and one per name (later checks of that
    name wait for the same answer), and the caller's deadline abandons it.
    """
    try:
        ipaddress.ip_address(target.host)
        addresses = [target.host]
    except ValueError:
        addresses = await _resolve(target.host, target.port)
    error: OSError | None = None
    for address in addresses:
        try:
            return await asyncio.open_connection(
                address,
                target.port,
                ssl=_tls_context() if target.tls else None,
                server_hostname=target.host if target.tls else None,
            )
        except OSError as exc:
            error = exc
    raise error or RespError(f"no address for {target.host!r}")


async def _resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[list[str]] = loop.create_future()

    def settle(addresses: list[str], error: OSError | None) -> None:
        if answer.done():
            return  # abandoned at the deadline
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(addresses)

    def notify(addresses: list[str], error: OSError | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(settle, addresses, error)

    key = (host, port)
    with _PENDING_LOCK:
        waiters = _PENDING.get(key)
        if waiters is not None:
            if len(waiters) >= _MAX_WAITERS:
                raise RespError("previous name lookup still running")
            waiters.append(notify)
            start = False
        elif not _LOOKUPS.acquire(blocking=False):
            raise RespError("too many name lookups in flight")
        else:
            _PENDING[key] = [notify]
            start = True
    if start:
        threading.Thread(
            target=_lookup, args=(host, port), name="selectors-lib-resolve", daemon=True
        ).start()
    return await answer


def _lookup(host: str, port: int) -> None:
    """Resolve on this (daemon) thread, then answer everyone waiting for it."""
    addresses: list[str] = []
    error: OSError | None = None
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    except OSError as exc:
        error = exc
    except Exception as exc:  # UnicodeError for a bad name: still this check's failure
        error = RespError(f"bad host name: {exc}")
    finally:
        with _PENDING_LOCK:
            waiters = _PENDING.pop((host, port), [])
        _LOOKUPS.release()
    for notify in waiters:
        notify(addresses, error)


def _printable(data: bytes) -> str:
    return repr(data[:40].decode("utf-8", "backslashreplace"))


def parse_info(body: bytes) -> dict[str, str]:
    """Parse an ``INFO`` reply into ``{field: value}`` (section headers skipped).

    Raises:
        RespError: The reply is not UTF-8.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RespError(f"INFO reply is not UTF-8 (byte {exc.start})") from None
    info: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if sep:
            info[key] = value
    return info


def _expired(timeout: float) -> RespError:
    return RespError(f"timed out: no complete answer within {timeout:g}s")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA store takes milliseconds: once per process, not per check.
    return ssl.create_default_context()


def info_replication(
    target: RedisTarget, timeout: float, max_bytes: int = MAX_REPLY_BYTES
) -> dict[str, str]:
    """Read ``INFO replication`` from ``target``, the whole exchange within ``timeout``.

    Args:
        target: The server.
        timeout: Total seconds for connect, TLS, ``AUTH`` and the whole reply.
        max_bytes: The largest reply accepted.

    Returns:
        The parsed fields.

    Raises:
        OSError: Any failure (:class:`RespError` for the protocol and the deadline).
    """
    deadline = time.monotonic() + timeout

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _expired(timeout)
        return remaining

    request, replies = _request(target)
    parser = ReplyParser(replies, max_bytes)
    sock: socket.socket
    try:
        if target.path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(left())
                sock.connect(target.path)
            except BaseException:
                sock.close()
                raise
        else:
            sock = socket.create_connection((target.host, target.port), timeout=left())
        with sock:
            if target.tls:
                sock.settimeout(left())
                sock = _tls_context().wrap_socket(sock, server_hostname=target.host)
            sock.settimeout(left())
            sock.sendall(request)
            while not parser.done:
                # The timeout of each read is what is left of the whole exchange.
                sock.settimeout(left())
                data = sock.recv(_CHUNK)
                if not data:
                    raise RespError("connection closed before the reply was complete")
                parser.feed(data)
    except TimeoutError:
        raise _expired(timeout) from None
    assert parser.body is not None  # done implies the bulk string arrived
    return parse_info(parser.body)


async def ainfo_replication(
    target: RedisTarget, timeout: float, max_bytes: int = MAX_REPLY_BYTES
) -> dict[str, str]:
    """Like :func:`info_replication`, on the running event loop.

    Raises:
        OSError: Any failure (:class:`RespError` for the protocol and the deadline).
    """
    request, replies = _request(target)
    parser = ReplyParser(replies, max_bytes)
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            if target.path:
                reader, writer = await asyncio.open_unix_connection(target.path)
            else:
                reader, writer = await _aconnect(target)
            writer.write(request)
            await writer.drain()
            while not parser.done:
                data = await reader.read(_CHUNK)
                if not data:
                    raise RespError("connection closed before the reply was complete")
                parser.feed(data)
    except TimeoutError:
        raise _expired(timeout) from None
    finally:
        if writer is not None:
            writer.close()
    assert parser.body is not None  # done implies the bulk string arrived
    return parse_info(parser.body)
