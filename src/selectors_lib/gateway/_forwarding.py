"""The headers a request carries upstream: hop-by-hop fields out, forwarding facts in.

Every client copy of the headers the proxy sets itself (``X-Forwarded-*``,
``Forwarded``, the user header, Gate's origin) is removed in every spelling a
backend may read as the same name (``_`` for ``-``), so a client cannot
smuggle its own values past the proxy.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from selectors_lib._criteria import Criteria
from selectors_lib._headers import USER_HEADER, HeaderMapping

from ._messages import HOP_BY_HOP, connection_tokens, forwarded_headers

__all__ = ["RequestHeaders"]

Scope = MutableMapping[str, Any]
Headers = list[tuple[bytes, bytes]]

_USER_HEADER_BYTES = USER_HEADER.encode("ascii")
#: Where Spinnaker services read the origin (Gate sets it; it derives deck/api).
_ORIGIN_HEADER = b"x-spinnaker-user-origin"
_FORWARDING = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded"}
)
# The gateway frames every request body itself; expect: the server in front
# already answered 100-continue.
_DROPPED = HOP_BY_HOP | frozenset({b"host", b"expect", b"content-length"})
# Forwarding header sets kept for repeated client facts (cleared when full).
_CACHED = 4096


def _canonical(name: bytes) -> bytes:
    return name.lower().replace(b"_", b"-")


class RequestHeaders:
    """Builds the upstream request's headers from the client's.

    Args:
        mapping: The header mapping routing uses (Gate's origin, its fields).
        forwarded: Set ``X-Forwarded-*`` and RFC 7239 ``Forwarded``.
        user_header: Lowercased name of the header carrying the user routed on,
            or None to pass the client's through.
        underscore_headers: Forward client headers whose names contain ``_``.
    """

    def __init__(
        self,
        mapping: HeaderMapping,
        *,
        forwarded: bool,
        user_header: bytes | None,
        underscore_headers: bool,
    ) -> None:
        self.mapping = mapping
        self.forwarded = forwarded
        self.user_header = user_header
        self.underscore_headers = underscore_headers
        replaced = set(_FORWARDING) if forwarded else set()
        if user_header is not None:
            replaced.add(_canonical(user_header))
        if mapping.gate_origin:
            replaced |= {
                _canonical(h.encode("latin-1")) for h, f in mapping.fields if f == "origin"
            }
            replaced.add(_ORIGIN_HEADER)
        self._replaced = frozenset(replaced)
        self._forwarding: dict[tuple[Any, ...], Headers] = {}

    def build(self, scope: Scope, criteria: Criteria, authenticated: str | None) -> Headers:
        """The headers to send upstream (without ``Host`` and framing)."""
        # One pass over the client's headers: this runs on every request.
        kept: Headers = []
        previous: list[bytes] = []
        options: list[bytes] = []
        host: bytes | None = None
        user: bytes | None = None
        replaced = self._replaced
        underscores = self.underscore_headers
        for raw_name, value in scope.get("headers") or ():
            name = raw_name.lower()
            if name == _USER_HEADER_BYTES and user is None:
                user = value  # the trusted header's first copy, if routing used it
            if name in _DROPPED:
                if name == b"host" and host is None:
                    host = value
                elif name == b"connection":
                    options.append(value)
                continue
            if b"_" in name:
                if not underscores:
                    # As nginx and gunicorn do by default: a WSGI/CGI backend
                    # reads X_Spinnaker_User as X-Spinnaker-User.
                    continue
                canonical = name.replace(b"_", b"-")
            else:
                canonical = name
            if canonical == b"x-forwarded-for":
                previous.append(value)
            if canonical in replaced:
                continue
            kept.append((name, value))
        if options:
            named = connection_tokens((b"connection", v) for v in options)
            kept = [(n, v) for n, v in kept if n not in named]
        if self.forwarded:
            if previous:
                kept.extend(forwarded_headers(scope, previous, host))
            else:
                # Without a client chain they depend on few facts, which repeat.
                client = scope.get("client")
                facts = (client[0] if client else None, host, scope.get("scheme"))
                cached = self._forwarding.get(facts)
                if cached is None:
                    cached = forwarded_headers(scope, previous, host)
                    if len(self._forwarding) >= _CACHED:
                        self._forwarding.clear()
                    if host is not None or not scope.get("server"):
                        self._forwarding[facts] = cached
                kept.extend(cached)
        if self.mapping.gate_origin and criteria.origin is not None:
            kept.append((_ORIGIN_HEADER, criteria.origin.encode("latin-1", "replace")))
        if self.user_header is not None:
            value = self._forwarded_user(authenticated, criteria, user)
            if value:
                kept.append((self.user_header, value))
        return kept

    def _forwarded_user(
        self, authenticated: str | None, criteria: Criteria, received: bytes | None
    ) -> bytes | None:
        """The user to pass on: the authenticated one, or the trusted header's own bytes.

        Args:
            authenticated: The framework's user, if any.
            criteria: What the request was routed on.
            received: The first ``X-SPINNAKER-USER`` the client sent, if any.
        """
        if authenticated is not None:
            # A framework user is text: sent as UTF-8, unless it could not make
            # a valid header value.
            return authenticated.encode("utf-8") if authenticated.isprintable() else None
        if criteria.authenticated_user is None:
            return None
        # Routed on the trusted header: forward what was received, byte for
        # byte (decoding and re-encoding could turn latin-1 into UTF-8).
        return bytes(received) if received is not None else None
