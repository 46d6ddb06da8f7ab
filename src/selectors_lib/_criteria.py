"""What a request is routed on: :class:`Criteria`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TypeVar, overload

import attrs

__all__ = ["FIELDS", "TOKEN_ATTRIBUTE", "Attributes", "Criteria"]

_T = TypeVar("_T")

#: The named criteria fields, in documentation order.
FIELDS: tuple[str, ...] = (
    "application",
    "authenticated_user",
    "execution_type",
    "execution_id",
    "origin",
    "location",
    "account",
    "cloud_provider",
)

#: The ``Criteria.attributes`` name a request carries its read-your-writes
#: token under. Defined here, not with the tokens (``_consistent``), because
#: ``select()`` tests for it and must not import the token machinery to do so.
TOKEN_ATTRIBUTE = "consistency-token"


class Attributes(Mapping[str, str]):
    """An immutable, hashable mapping of further named request values.

    Names are lowercased (they are usually HTTP header names, which are
    case-insensitive); values are kept as given, and a ``None`` value means the
    attribute is absent, as ``None`` does for the named fields.
    """

    __slots__ = ("_data", "_hash", "_items")

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        data: dict[str, str] = {}
        if items:
            for name, value in items.items():
                if value is not None:  # absent, as for the named fields
                    data[str(name).lower()] = str(value)
        self._data = data
        # The items in name order: equal exactly when the mappings are, and a
        # tuple hashes and compares in C. The decision cache keys on it rather
        # than on this mapping, whose __hash__/__eq__ are Python calls.
        # Only a cache key: never used to pick a route.
        self._items = tuple(sorted(data.items()))
        self._hash = hash(self._items)

    def __getitem__(self, name: str) -> str:
        return self._data[name]

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, /, default: str | _T) -> str | _T: ...
    def get(self, name: str, /, default: object = None) -> object:
        """The value of ``name``, or ``default`` (one dict lookup: no KeyError raised)."""
        return self._data.get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Attributes):
            return self._data == other._data
        if isinstance(other, Mapping):
            return self._data == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"Attributes({dict(sorted(self._data.items()))!r})"


#: The one empty mapping every criteria without attributes shares (one fewer
#: object per request, and its cache-key part is the empty tuple).
_EMPTY = Attributes()


def _to_attributes(value: Mapping[str, str] | None) -> Attributes:
    if value is None or value is _EMPTY:
        return _EMPTY
    if not isinstance(value, Attributes):
        value = Attributes(value)
    # Empty (given as {}, Attributes() or only None values): the shared one.
    return value if value._data else _EMPTY


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


@attrs.frozen(cache_hash=True, kw_only=True)
class Criteria:
    """The facts about one request that rules match on.

    Every field is optional; ``None`` means "not known" and never matches a rule
    that tests the field. Any string routes, however long or odd: matching never
    raises.

    Args:
        application: The Spinnaker application (``X-SPINNAKER-APPLICATION``).
        authenticated_user: Who is calling (from authentication, or a trusted header).
        execution_type: ``pipeline`` or ``orchestration`` in Spinnaker.
        execution_id: The execution being run; a good hash key for stickiness.
        origin: Where the request came from (``deck`` for the UI, ``api``...).
        location: A region or location.
        account: The cloud account.
        cloud_provider: The cloud provider.
        attributes: Further named values (headers, tenant, region); names lowercased.
    """

    application: str | None = attrs.field(default=None, converter=_opt_str)
    authenticated_user: str | None = attrs.field(default=None, converter=_opt_str)
    execution_type: str | None = attrs.field(default=None, converter=_opt_str)
    execution_id: str | None = attrs.field(default=None, converter=_opt_str)
    origin: str | None = attrs.field(default=None, converter=_opt_str)
    location: str | None = attrs.field(default=None, converter=_opt_str)
    account: str | None = attrs.field(default=None, converter=_opt_str)
    cloud_provider: str | None = attrs.field(default=None, converter=_opt_str)
    attributes: Attributes = attrs.field(default=_EMPTY, converter=_to_attributes)

    def get(self, source: str) -> str | None:
        """Return the value a key source names.

        Args:
            source: A field name (``application``) or ``attributes.<name>``.

        Returns:
            The value, or ``None`` when absent.
        """
        if source.startswith("attributes."):
            return self.attributes.get(source[11:].lower())
        value: str | None = getattr(self, source, None) if source in FIELDS else None
        return value
