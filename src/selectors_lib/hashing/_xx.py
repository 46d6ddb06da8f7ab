"""The fixed 64-bit hash every algorithm here is built on: xxHash64."""

from __future__ import annotations

import xxhash

__all__ = ["MASK64", "encode", "key_hash", "xxh64"]

MASK64 = (1 << 64) - 1

#: xxHash64 of bytes with an optional seed; the C implementation from the ``xxhash`` package.
xxh64 = xxhash.xxh64_intdigest


def encode(text: str) -> bytes:
    """Encode ``text`` as UTF-8, passing lone surrogates through instead of raising.

    Args:
        text: Any Python string, including ones with lone surrogates (e.g. from
            ``os.fsdecode`` or broken JSON).

    Returns:
        The UTF-8 bytes; lone surrogates become their 3-byte "WTF-8" form, so every
        string has exactly one encoding and hashing never raises.
    """
    return text.encode("utf-8", "surrogatepass")


def key_hash(key: str) -> int:
    """Hash a request key the way ``HashTable.lookup`` does.

    This is xxHash64 with seed 0 over the UTF-8 bytes of ``key`` (lone surrogates
    encoded with ``surrogatepass``). It equals Envoy's ``HashUtil::xxHash64`` of a
    header value, so ``lookup_hash(key_hash(k)) == lookup(k)`` for every table and the
    ``ring``/``maglev`` tables pick the host Envoy would for the same header value.

    Args:
        key: The request key (user id, session id, ...).

    Returns:
        An unsigned 64-bit integer.
    """
    return xxh64(key.encode("utf-8", "surrogatepass"))
