"""The table protocol and the input validation every algorithm shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

__all__ = ["HashTable", "check_n", "check_option_int", "normalize_hosts", "normalize_weights"]

#: Envoy stores host weights as uint32 and requires their sum to fit one as well.
MAX_TOTAL_WEIGHT = (1 << 32) - 1


@runtime_checkable
class HashTable(Protocol):
    """An immutable host-selection table built by :func:`selectors_lib.hashing.build`.

    Tables never change after ``build``; reading them from many threads at once needs
    no lock (the ``slots`` table fills its cells lazily, idempotently: every reader
    that fills a cell writes the same value).
    """

    @property
    def hosts(self) -> tuple[str, ...]:
        """The host keys, in the order given to ``build``."""
        ...

    @property
    def weights(self) -> tuple[int, ...]:
        """The weight of each host, aligned with :attr:`hosts`."""
        ...

    def lookup(self, key: str) -> str:
        """Return the host for ``key`` (hashed with :func:`key_hash`)."""
        ...

    def lookup_hash(self, h: int) -> str:
        """Return the host for a precomputed unsigned 64-bit hash ``h``."""
        ...

    def preference(self, key: str, n: int) -> tuple[str, ...]:
        """Return the first ``n`` distinct hosts of ``key``'s deterministic failover order.

        The first element is always ``lookup(key)``.
        """
        ...


def normalize_hosts(hosts: Sequence[str]) -> tuple[str, ...]:
    """Validate host keys.

    Args:
        hosts: The host keys given to ``build``.

    Returns:
        The hosts as a tuple, in the given order.

    Raises:
        ValueError: If ``hosts`` is a bare string, is empty, or has an empty,
            non-string or duplicate key.
    """
    if isinstance(hosts, str | bytes):
        raise ValueError("hosts must be a sequence of host keys, not a single string")
    result = tuple(hosts)
    if not result:
        raise ValueError("hosts must not be empty")
    seen: set[str] = set()
    for i, host in enumerate(result):
        if not isinstance(host, str):
            raise ValueError(f"hosts[{i}] must be a str, got {type(host).__name__}")
        if not host:
            raise ValueError(f"hosts[{i}] is an empty host key")
        if host in seen:
            raise ValueError(f"hosts[{i}] duplicates host key {host!r}")
        seen.add(host)
    return result


def normalize_weights(hosts: tuple[str, ...], weights: Mapping[str, int] | None) -> tuple[int, ...]:
    """Validate weights and align them with ``hosts`` (missing hosts weigh 1).

    Args:
        hosts: Validated host keys.
        weights: Host key to positive integer weight, or ``None`` for all 1.

    Returns:
        One weight per host, in host order.

    Raises:
        ValueError: If a weight is not a positive int, names an unknown host, or the
            total exceeds 2**32 - 1 (Envoy's limit, kept everywhere for one rule).
    """
    if weights is None:
        return (1,) * len(hosts)
    known = set(hosts)
    for name in sorted(weights):
        if name not in known:
            raise ValueError(f"weights names unknown host {name!r}")
    result: list[int] = []
    for host in hosts:
        w = weights.get(host, 1)
        if isinstance(w, bool) or not isinstance(w, int):
            raise ValueError(f"weight of {host!r} must be an int, got {type(w).__name__}")
        if w <= 0:
            raise ValueError(f"weight of {host!r} must be positive, got {w}")
        result.append(w)
    if sum(result) > MAX_TOTAL_WEIGHT:
        raise ValueError(f"the sum of weights must not exceed {MAX_TOTAL_WEIGHT}")
    return tuple(result)


def check_option_int(name: str, value: object, lo: int, hi: int) -> int:
    """Validate an integer option.

    Args:
        name: The option name, for the error message.
        value: The value given.
        lo: Smallest allowed value.
        hi: Largest allowed value.

    Returns:
        ``value`` as an int.

    Raises:
        ValueError: If ``value`` is not an int in ``[lo, hi]``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"option {name} must be an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ValueError(f"option {name} must be in [{lo}, {hi}], got {value}")
    return value


def check_n(n: int) -> int:
    """Validate the ``n`` of ``preference``.

    Raises:
        ValueError: If ``n`` is negative or not an int.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    return n
