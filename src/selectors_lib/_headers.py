"""Building :class:`Criteria` from HTTP headers.

Headers are client-controlled. The default mapping therefore never takes the
authenticated user from a header (adapters take it from the framework's
authentication) unless ``trust_user_header`` says so, caps every value's length,
and never raises on odd input.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Mapping

import attrs

from ._consistent import TOKEN_ATTRIBUTE
from ._criteria import Criteria

__all__ = [
    "DEFAULT_HEADER_FIELDS",
    "DEFAULT_MAX_VALUE_LENGTH",
    "TOKEN_HEADER",
    "USER_HEADER",
    "HeaderMapping",
    "cookie_value",
    "derive_gate_origin",
    "header_name",
    "header_text",
]

#: Spinnaker's request headers and the criteria field each fills.
DEFAULT_HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("x-spinnaker-application", "application"),
    ("x-spinnaker-execution-type", "execution_type"),
    ("x-spinnaker-execution-id", "execution_id"),
    ("x-spinnaker-user-origin", "origin"),
    ("x-spinnaker-account", "account"),
    ("x-spinnaker-cloud-provider", "cloud_provider"),
)
USER_HEADER = "x-spinnaker-user"
#: The header a read-your-writes token travels in (see docs/consistency.md).
TOKEN_HEADER = "x-consistency-token"


def derive_gate_origin(headers: Mapping[str, str]) -> str:
    """Gate's origin rule: ``deck`` when ``X-RateLimit-App`` is ``deck`` (any case), else ``api``.

    Args:
        headers: Header mapping with lowercased names.
    """
    return "deck" if headers.get("x-ratelimit-app", "").lower() == "deck" else "api"


#: The router's default ``settings.max_value_length``: by default a mapping keeps
#: exactly the values a router with default settings would run a pattern on.
DEFAULT_MAX_VALUE_LENGTH = 4096


def header_text(value: str | bytes, cap: int) -> str:
    """One header value as text, by the rule every adapter shares.

    Bytes are decoded as UTF-8 when they are valid UTF-8, else as latin-1 (so
    every byte string decodes, and ``café`` sent as UTF-8 reads ``café`` on
    every path). A ``str`` is taken as latin-1-decoded bytes, as PEP 3333
    (WSGI), Starlette and ``http.client`` hand them over: it is re-encoded as
    latin-1 and the same rule applied. A ``str`` holding characters beyond
    latin-1 was decoded already and is kept as it is.

    Values longer than ``cap`` characters are cut to ``cap + 1``: still longer
    than the cap, so a router whose ``settings.max_value_length`` is ``cap``
    treats them as over-long (never matching a pattern) exactly as it would the
    whole value. Only the first ``4 * (cap + 1)`` bytes are ever decoded (enough
    for ``cap + 1`` characters in either encoding), so a huge header costs
    memory in proportion to the cap, not to its size; UTF-8 validity is judged
    on those bytes.

    Args:
        value: The raw value (bytes) or its latin-1-decoded text.
        cap: The length cap (at least 1).

    Returns:
        The text, at most ``cap + 1`` characters.
    """
    limit = 4 * (cap + 1)
    if not isinstance(value, (bytes, bytearray, memoryview)):
        value = str(value)  # odd input (a number in a mapping) must not crash
    if isinstance(value, str):
        try:
            head = value[:limit].encode("latin-1")
        except UnicodeEncodeError:
            return value[: cap + 1]
        truncated = len(value) > limit
    else:
        head = bytes(value[:limit])
        truncated = len(value) > limit
    try:
        # final=False when cut: a character split by the cut is not an error.
        text = codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=not truncated)
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    return text[: cap + 1]


def header_name(name: str | bytes) -> str:
    """A header name, lowercased (names are ASCII tokens; latin-1 never fails)."""
    return (name.decode("latin-1") if isinstance(name, bytes) else str(name)).lower()


def _normalise(
    headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
    cap: int,
) -> dict[str, str]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in pairs:
        key = header_name(name)
        # The first occurrence wins, as with most frameworks' header lookups;
        # later copies are not even decoded.
        if key not in out:
            out[key] = header_text(value, cap)
    return out


def _cap(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


@attrs.frozen
class HeaderMapping:
    """How request headers become :class:`Criteria`.

    Args:
        fields: ``(header name, criteria field)`` pairs; names case-insensitive.
        attributes: Further header names copied into ``Criteria.attributes``
            (under the lowercased header name).
        trust_user_header: Take ``authenticated_user`` from ``X-SPINNAKER-USER``.
            Only safe behind a proxy that sets it and strips clients' copies.
        gate_origin: Derive ``origin`` as Gate does (``deck``/``api`` from
            ``X-RateLimit-App``), overriding any origin header.
        max_value_length: Values longer than this many characters are cut to
            one character more, so they stay longer than the cap (default 4096,
            the router's default ``settings.max_value_length``). Keep it no lower
            than your router's ``settings.max_value_length``: a value between
            the two would reach patterns when passed directly but not through
            a mapping.
        token_header: The header a consistency token is read from, into the
            ``consistency-token`` attribute (None: never read one). Only rules
            with a ``consistency:`` policy act on it.
        token_cookie: A cookie to read the token from when the header is absent
            (the gateway can set it on write routes); None: no cookie.

    Raises:
        ValueError: ``max_value_length`` is not an integer >= 1.
    """

    fields: tuple[tuple[str, str], ...] = DEFAULT_HEADER_FIELDS
    attributes: tuple[str, ...] = ()
    trust_user_header: bool = False
    gate_origin: bool = False
    max_value_length: int = attrs.field(default=DEFAULT_MAX_VALUE_LENGTH, validator=_cap)
    token_header: str | None = TOKEN_HEADER
    token_cookie: str | None = None

    @property
    def token_headers(self) -> tuple[str, ...]:
        """The lowercased header names a token is read from (for callers that pre-filter)."""
        names = (self.token_header, "cookie" if self.token_cookie else None)
        return tuple(n.lower() for n in names if n)

    def criteria(
        self,
        headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
        *,
        user: str | None = None,
    ) -> Criteria:
        """Build criteria from ``headers``.

        Args:
            headers: A mapping or a sequence of ``(name, value)`` pairs (str or
                bytes, as ASGI gives them).
            user: The authenticated user from the framework, if any; it wins
                over a trusted header.

        Returns:
            The criteria. Never raises on odd header values.
        """
        cap = self.max_value_length
        normal = _normalise(headers, cap)
        values: dict[str, str | None] = {}
        for header, field in self.fields:
            value = normal.get(header.lower())
            if value is not None:
                values[field] = value
        if self.gate_origin:
            values["origin"] = derive_gate_origin(normal)
        if user is None and self.trust_user_header:
            user = normal.get(USER_HEADER)
        if user is not None:
            values["authenticated_user"] = user[: cap + 1]
        attributes = {
            name.lower(): normal[name.lower()] for name in self.attributes if name.lower() in normal
        }
        token = normal.get(self.token_header.lower()) if self.token_header else None
        if token is None and self.token_cookie and "cookie" in normal:
            token = cookie_value(normal["cookie"], self.token_cookie)
        if token is not None:
            attributes[TOKEN_ATTRIBUTE] = token
        return Criteria(**values, attributes=attributes)


def cookie_value(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a ``Cookie`` header, or None (never raises).

    Linear in the header's length, which :func:`header_text` has capped already.

    Args:
        header: The ``Cookie`` header's value.
        name: The cookie's name (exact, case-sensitive as cookies are).
    """
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            return value.strip().strip('"')
    return None
