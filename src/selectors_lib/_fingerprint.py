"""A configuration's fingerprint: one short, stable name for what a router serves.

Two processes serve the same routes exactly when their fingerprints are equal,
so a fleet's instances publish theirs and an operator spots drift at a glance
(``selectors-lib fleet``). The fingerprint is SHA-256 over the canonical JSON of
:func:`~selectors_lib.config_to_dict` (keys sorted, no whitespace, ASCII only),
so it is the same in every process and Python version: nothing in it depends on
``hash()``, set order or float formatting beyond ``repr`` (shortest round-trip
since Python 3.1). The source path and load warnings are not part of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._router import RouterConfig

__all__ = ["FINGERPRINT_LENGTH", "config_fingerprint", "install_canonical_form"]

#: Hex digits kept: 64 bits tell configurations apart in any fleet and stay readable.
FINGERPRINT_LENGTH = 16

#: The canonical form (``config_to_dict``). The loader sits above the router and
#: the events, which ask for fingerprints; it installs its dumper here on import,
#: so nothing below it imports it.
_canonical: list[Callable[[RouterConfig], dict[str, Any]]] = []


def install_canonical_form(to_dict: Callable[[RouterConfig], dict[str, Any]]) -> None:
    """Set the function that gives a configuration's canonical form (the loader's dump)."""
    _canonical[:] = [to_dict]


def config_fingerprint(config: RouterConfig) -> str:
    """The stable fingerprint of a configuration.

    Args:
        config: A validated configuration.

    Returns:
        ``sha256:`` and the first :data:`FINGERPRINT_LENGTH` hex digits of the
        digest of its canonical form.
    """
    # Imported here: most processes never ask, and both cost import time.
    import hashlib
    import json

    canonical = json.dumps(
        _canonical[0](config),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
        default=str,
    )
    digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()
    return "sha256:" + digest[:FINGERPRINT_LENGTH]
