"""Consistent hashing: pure, deterministic host-selection tables.

A leaf package: it imports nothing else from ``selectors_lib``.

* :func:`build` makes an immutable :class:`HashTable` from host keys, optional
  integer weights and algorithm options; the same inputs give the same table in any
  process, under any ``PYTHONHASHSEED``, on any machine.
* :func:`key_hash` is the fixed 64-bit hash of a key (xxHash64, seed 0, UTF-8).
* :func:`jump_hash` is Guava-compatible jump consistent hashing.
* :class:`BoundedLoad` adds the opt-in bounded-load policy on top of any table.

Algorithms (see ``docs/algorithms.md`` for how to choose):

``slots`` (default)
    2**20 slots owned by weighted rendezvous: O(1) lookups, minimal movement on add
    and remove, max/mean load within a few percent. Pools of up to 8 hosts compute a
    slot's owner per lookup; larger ones cache owners lazily in 1-byte cells.
``ring``
    Envoy ``ring_hash`` (xxHash), bit-compatible.
``maglev``
    Envoy ``maglev``, bit-compatible.
``rendezvous``
    Weighted highest-random-weight over the key: O(hosts) per lookup.
``jump``
    Jump consistent hash over the host order; no weights, only append/pop-last are
    minimally disruptive.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from selectors_lib._lazy import lazy_attributes as _lazy_attributes

from ._base import HashTable
from ._base import check_option_int as _check_option_int
from ._base import normalize_hosts as _normalize_hosts
from ._base import normalize_weights as _normalize_weights
from ._rendezvous import RendezvousTable as _RendezvousTable
from ._slots import DEFAULT_SLOTS as _DEFAULT_SLOTS
from ._slots import MAX_SLOTS as _MAX_SLOTS
from ._slots import MIN_SLOTS as _MIN_SLOTS
from ._slots import slots_table as _slots_table
from ._xx import key_hash

if TYPE_CHECKING:
    from ._bounded import BoundedLoad
    from ._jump import jump_hash
else:
    # Imported on first use (the default ``slots`` tables need neither): a
    # process that routes never pays for them at import.
    _LAZY = {"BoundedLoad": "._bounded", "jump_hash": "._jump"}

    __getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, globals())


__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "BoundedLoad",
    "HashTable",
    "build",
    "jump_hash",
    "key_hash",
]

#: Every algorithm name :func:`build` accepts.
ALGORITHMS: tuple[str, ...] = ("jump", "maglev", "rendezvous", "ring", "slots")

#: The algorithm used when none is named: ``"slots"``.
DEFAULT_ALGORITHM: str = "slots"

_RING_MAX = 8388608  # Envoy's proto bound on both ring sizes.


def _check_options(algorithm: str, options: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for name in sorted(options):
        if name not in allowed:
            expected = ", ".join(allowed) if allowed else "none"
            raise ValueError(
                f"unknown option {name!r} for algorithm {algorithm!r} (allowed: {expected})"
            )


# ring and maglev are imported by their builders: most processes never build
# one, and importing them is a quarter of the package's import time.


def _build_ring(hosts: tuple[str, ...], weights: tuple[int, ...], **options: Any) -> HashTable:
    from ._ring import DEFAULT_MAX_RING_SIZE, DEFAULT_MIN_RING_SIZE, RingTable

    _check_options("ring", options, ("hash_function", "max_ring_size", "min_ring_size"))
    hash_function = options.get("hash_function", "XX_HASH")
    if hash_function != "XX_HASH":
        raise ValueError(f"option hash_function supports only 'XX_HASH', got {hash_function!r}")
    lo = _check_option_int(
        "min_ring_size", options.get("min_ring_size", DEFAULT_MIN_RING_SIZE), 1, _RING_MAX
    )
    hi = _check_option_int(
        "max_ring_size", options.get("max_ring_size", DEFAULT_MAX_RING_SIZE), 1, _RING_MAX
    )
    return RingTable(hosts, weights, lo, hi)


def _build_maglev(hosts: tuple[str, ...], weights: tuple[int, ...], **options: Any) -> HashTable:
    from ._maglev import DEFAULT_TABLE_SIZE, MaglevTable

    _check_options("maglev", options, ("table_size",))
    size = _check_option_int(
        "table_size", options.get("table_size", DEFAULT_TABLE_SIZE), 2, 5000011
    )
    return MaglevTable(hosts, weights, size)


def _build_rendezvous(
    hosts: tuple[str, ...], weights: tuple[int, ...], **options: Any
) -> HashTable:
    _check_options("rendezvous", options, ())
    return _RendezvousTable(hosts, weights)


def _build_jump(hosts: tuple[str, ...], weights: tuple[int, ...], **options: Any) -> HashTable:
    from ._jump import JumpTable

    _check_options("jump", options, ())
    if len(set(weights)) > 1:
        raise ValueError("algorithm 'jump' does not support weights (all must be equal)")
    return JumpTable(hosts)


def _build_slots(hosts: tuple[str, ...], weights: tuple[int, ...], **options: Any) -> HashTable:
    _check_options("slots", options, ("slots",))
    slots = _check_option_int("slots", options.get("slots", _DEFAULT_SLOTS), _MIN_SLOTS, _MAX_SLOTS)
    return _slots_table(hosts, weights, slots)


_BUILDERS: dict[str, Callable[..., HashTable]] = {
    "jump": _build_jump,
    "maglev": _build_maglev,
    "rendezvous": _build_rendezvous,
    "ring": _build_ring,
    "slots": _build_slots,
}


def build(
    algorithm: str,
    hosts: Sequence[str],
    *,
    weights: Mapping[str, int] | None = None,
    **options: Any,
) -> HashTable:
    """Build an immutable host-selection table.

    Args:
        algorithm: One of :data:`ALGORITHMS`.
        hosts: Unique, non-empty host keys (endpoint ids). ``ring`` and ``jump``
            depend on their order (as Envoy's ring depends on its host order); the
            others do not.
        weights: Positive integer weight per host key; hosts not named weigh 1.
        **options: Per algorithm: ``ring``: ``min_ring_size`` (1024),
            ``max_ring_size`` (8388608), ``hash_function`` ("XX_HASH" only);
            ``maglev``: ``table_size`` (65537, prime); ``slots``: ``slots`` (2**20,
            a power of two in [16, 2**24]); ``rendezvous`` and ``jump``: none.

    Returns:
        A :class:`HashTable`. It is a pure function of the arguments.

    Raises:
        ValueError: Unknown algorithm or option, bad option value, empty or
            duplicate host keys, unknown host in ``weights``, non-positive weight, or
            non-uniform weights for ``jump``.
    """
    builder = _BUILDERS.get(algorithm) if isinstance(algorithm, str) else None
    if builder is None:
        raise ValueError(
            f"unknown hashing algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}"
        )
    host_tuple = _normalize_hosts(hosts)
    weight_tuple = _normalize_weights(host_tuple, weights)
    return builder(host_tuple, weight_tuple, **options)
