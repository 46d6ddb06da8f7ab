"""Building :class:`Criteria` from HTTP headers.

Headers are client-controlled. The default mapping therefore never takes the
authenticated user from a header (adapters take it from the framework's
authentication) unless ``trust_user_header`` says so, caps every value's length,
and never raises on odd input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from ._criteria import Criteria

__all__ = ["DEFAULT_HEADER_FIELDS", "HeaderMapping", "derive_gate_origin"]

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


def derive_gate_origin(headers: Mapping[str, str]) -> str:
    """Gate's origin rule: ``deck`` when ``X-RateLimit-App`` is ``deck`` (any case), else ``api``.

    Args:
        headers: Header mapping with lowercased names.
    """
    return "deck" if headers.get("x-ratelimit-app", "").lower() == "deck" else "api"


def _normalise(
    headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
    cap: int,
) -> dict[str, str]:
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.decode("latin-1") if isinstance(name, bytes) else str(name)
        # Cut before decoding: a huge header costs cap characters, not its size
        # (latin-1 maps one byte to one character, so the cut is the same).
        text = value[:cap].decode("latin-1") if isinstance(value, bytes) else str(value)[:cap]
        # The first occurrence wins, as with most frameworks' header lookups.
        out.setdefault(key.lower(), text)
    return out


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
        max_value_length: Longer header values are cut to this many characters.
    """

    fields: tuple[tuple[str, str], ...] = DEFAULT_HEADER_FIELDS
    attributes: tuple[str, ...] = ()
    trust_user_header: bool = False
    gate_origin: bool = False
    max_value_length: int = 1024

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
                values[field] = value[:cap]
        if self.gate_origin:
            values["origin"] = derive_gate_origin(normal)
        if user is None and self.trust_user_header:
            user = normal.get(USER_HEADER)
        if user is not None:
            values["authenticated_user"] = user[:cap]
        attributes = {
            name.lower(): normal[name.lower()][:cap]
            for name in self.attributes
            if name.lower() in normal
        }
        return Criteria(**values, attributes=attributes)
