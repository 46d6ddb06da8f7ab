"""HTTP message rules of the gateway: targets, hop-by-hop fields, framing, Location.

Works on the raw ``(name, value)`` byte pairs of ASGI and of the upstream
parser, so nothing is decoded and re-encoded on the way through. Pure: no I/O.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, MutableMapping
from typing import Any

from selectors_lib._proxy_common import has_dot_segment

__all__ = [
    "BadRequest",
    "UpstreamTarget",
    "forwarded_headers",
    "response_headers",
    "rewrite_location",
    "strip_hop_by_hop",
    "upstream_path",
]

Scope = MutableMapping[str, Any]
Headers = list[tuple[bytes, bytes]]

#: Hop-by-hop fields (RFC 9110 section 7.6.1, plus the RFC 2616 ones proxies
#: still meet). ``content-length`` is not hop-by-hop, but the gateway frames
#: every body itself, so it is handled by :func:`response_headers` and by the
#: request writer instead.
HOP_BY_HOP: frozenset[bytes] = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_LENGTH = frozenset({b"content-length"})
_NOTHING: frozenset[bytes] = frozenset()
# Final statuses that never have a body (1xx heads are never final here).
_BODILESS = frozenset({204, 304})
# What a response's Connection value names: upstreams send one of very few
# values (keep-alive, close).
_NAMED_CACHE: dict[bytes, frozenset[bytes]] = {}
# At most this many X-Forwarded-For entries are relayed, the last ones (the
# nearest hops): the rebuilt headers stay bounded whatever a client sends.
_MAX_FORWARDED_HOPS = 32


class BadRequest(ValueError):
    """A request the gateway refuses to forward (answered ``400``)."""


class UpstreamTarget:
    """Where an endpoint's requests go: parsed once from its URL.

    Args:
        url: The endpoint's base URL (``http`` or ``https``, optional path).
    """

    __slots__ = ("base_path", "host", "host_header", "origin", "port", "tls")

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.tls else 80)
        netloc = parts.netloc.rpartition("@")[2]
        self.host_header = netloc.encode("idna" if not netloc.isascii() else "ascii")
        self.origin = f"{parts.scheme}://{netloc}".lower()
        self.base_path = parts.path.rstrip("/").encode("ascii", "strict")


def connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Every option the ``Connection`` fields name, lowercased (no limit: linear anyway)."""
    return frozenset(
        token
        for name, value in headers
        if name.lower() == b"connection"
        for part in value.split(b",")
        if (token := part.strip().lower())
    )


def strip_hop_by_hop(headers: Iterable[tuple[bytes, bytes]], drop: frozenset[bytes]) -> Headers:
    """Remove hop-by-hop fields, those ``Connection`` names, and ``drop``.

    Args:
        headers: Raw pairs (names in any case).
        drop: Further lowercased names to remove.

    Returns:
        The remaining pairs, names lowercased, in order.
    """
    pairs = [(n.lower(), v) for n, v in headers]
    remove = HOP_BY_HOP | drop
    for name, _ in pairs:
        if name == b"connection":
            remove = remove | connection_tokens(pairs)
            break
    return [(n, v) for n, v in pairs if n not in remove]


def upstream_path(target: UpstreamTarget, scope: Scope) -> bytes:
    """The request target to send upstream: the endpoint's base path, the path, the query.

    Raises:
        BadRequest: ``CONNECT``, an absolute-form target naming another
            authority than the request's ``Host``, or a path with a ``.`` or
            ``..`` segment in any spelling (it could leave the base path).
    """
    if scope.get("method") == "CONNECT":
        raise BadRequest("CONNECT is not supported by this gateway")
    raw = scope.get("raw_path")
    if not isinstance(raw, bytes) or not raw:
        raw = urllib.parse.quote(scope.get("path", "/"), safe="/:@!$&'()*+,;=-._~").encode("ascii")
    if b"?" in raw:
        raw = raw.split(b"?", 1)[0]
    if raw[:1] != b"/":
        raw = _origin_form(raw, scope)
    root = scope.get("root_path") or ""
    if root:
        encoded_root = urllib.parse.quote(root, safe="/").encode("ascii")
        if raw.startswith(encoded_root):
            raw = raw[len(encoded_root) :] or b"/"
    # Most paths hold neither a dot nor an escape: they skip the full check.
    if (b"." in raw or b"%" in raw or b"\\" in raw) and has_dot_segment(raw):
        raise BadRequest("dot segment in request path")
    if raw[:1] != b"/":
        raw = b"/" + raw
    query = scope.get("query_string")
    return target.base_path + raw + (b"?" + query if query else b"")


def _origin_form(raw: bytes, scope: Scope) -> bytes:
    """The path of an absolute-form target (RFC 9112 section 3.2.2), if it names this host."""
    scheme, sep, rest = raw.partition(b"://")
    if not sep or not scheme.isalpha():
        raise BadRequest("request target is neither a path nor an absolute URL")
    authority, slash, path = rest.partition(b"/")
    host = next((v for n, v in scope.get("headers") or () if n.lower() == b"host"), None)
    if host is None or authority.lower() != host.lower():
        raise BadRequest("absolute-form target names another authority than Host")
    return slash + path if slash else b"/"


def response_headers(headers: Headers, hop: Headers, status: int = 200) -> Headers:
    """Upstream response headers as the client gets them.

    Hop-by-hop fields go (the upstream connection keeps them apart, in
    ``hop``), and those its ``Connection`` fields name; ``Content-Length``
    goes too when ``Transfer-Encoding`` was present (RFC 9112 section 6.3:
    the chunked framing wins, and the server in front re-frames the body),
    and on ``204`` and ``304`` answers, which have no body whatever their
    fields say (RFC 9110 sections 8.6 and 15.4.5): the server in front would
    otherwise wait for, or insist on, body bytes that never come.

    Args:
        headers: The upstream's end-to-end fields, names lowercased.
        hop: Its hop-by-hop fields (``Connection``, ``Transfer-Encoding``, ...).
        status: The upstream's status.

    Returns:
        ``headers`` itself when nothing needs removing (the usual case),
        else a filtered copy.
    """
    remove = _LENGTH if status in _BODILESS else _NOTHING
    for name, value in hop:
        if name == b"transfer-encoding":
            remove = remove | _LENGTH
        elif name == b"connection":
            remove = remove | _named_by(value)
    if not remove:
        return headers
    return [(n, v) for n, v in headers if n not in remove]


def _named_by(value: bytes) -> frozenset[bytes]:
    """The end-to-end fields a ``Connection`` value names (``keep-alive``, ``close``: none)."""
    found = _NAMED_CACHE.get(value)
    if found is None:
        found = connection_tokens([(b"connection", value)]) - HOP_BY_HOP
        if len(_NAMED_CACHE) < 256:
            _NAMED_CACHE[value] = found
    return found


def rewrite_location(value: bytes, target: UpstreamTarget, scope: Scope) -> bytes:
    """``Location`` pointing at the upstream, rewritten to the address the client used.

    Like nginx's ``proxy_redirect default``: the endpoint's origin and base path
    become the client's scheme, ``Host`` and root path. Anything else is kept.
    """
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return value
    origin = target.origin
    if not text.lower().startswith(origin):
        return value
    rest = text[len(origin) :].encode("ascii")
    if rest and not rest.startswith((b"/", b"?", b"#")):
        return value  # another port or host that shares a prefix
    if target.base_path:
        if rest != target.base_path and not rest.startswith(target.base_path + b"/"):
            return value
        rest = rest[len(target.base_path) :]
    host: bytes | None = next((v for n, v in scope.get("headers") or () if n == b"host"), None)
    if host is None:
        return rest or b"/"
    scheme = str(scope.get("scheme", "http")).encode("ascii")
    root = urllib.parse.quote(scope.get("root_path") or "", safe="/").encode("ascii")
    return scheme + b"://" + host + root + (rest or b"/")


_TOKEN = re.compile(r"[0-9A-Za-z!#$%&'*+\-.^_`|~]+")


def _quoted(value: str) -> str:
    """An RFC 7239 value: a token as is, anything else as a quoted-string."""
    if _TOKEN.fullmatch(value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _node(address: str) -> str:
    # RFC 7239 section 6: IPv6 addresses are bracketed (and so quoted).
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def forwarded_headers(scope: Scope, previous: list[bytes], host: bytes | None) -> Headers:
    """``X-Forwarded-*`` and RFC 7239 ``Forwarded``, from the same facts.

    The client's ``X-Forwarded-For`` entries are kept in front of the peer
    address; proto and host are this proxy's own. ``Forwarded`` is rebuilt from
    exactly these, so a client cannot say one thing there and another in
    ``X-Forwarded-*``.

    Args:
        scope: The ASGI scope.
        previous: The client's ``X-Forwarded-For`` values.
        host: The client's ``Host`` value, if any.
    """
    chain = [part.strip().decode("latin-1") for value in previous for part in value.split(b",")]
    chain = [part for part in chain if part][-_MAX_FORWARDED_HOPS:]
    client = scope.get("client")
    peer = str(client[0]) if client else None
    scheme = str(scope.get("scheme", "http"))
    host_text = host.decode("latin-1") if host is not None else None
    if host_text is None and scope.get("server"):
        server_host, port = scope["server"][0], scope["server"][1]
        host_text = f"{server_host}:{port}" if port else str(server_host)
    out: list[tuple[str, str]] = []
    hops = [*chain, peer] if peer is not None else chain
    if hops:
        out.append(("x-forwarded-for", ", ".join(hops)))
    out.append(("x-forwarded-proto", scheme))
    if host_text is not None:
        out.append(("x-forwarded-host", host_text))
    elements = [f"for={_quoted(_node(hop))}" for hop in chain]
    last = [f"for={_quoted(_node(peer))}"] if peer is not None else []
    if host_text is not None:
        last.append(f"host={_quoted(host_text)}")
    last.append(f"proto={_quoted(scheme)}")
    elements.append(";".join(last))
    out.append(("forwarded", ", ".join(elements)))
    return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in out]
