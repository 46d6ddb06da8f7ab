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

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._router import RouterConfig

__all__ = ["FINGERPRINT_LENGTH", "config_fingerprint"]

#: Hex digits kept: 64 bits tell configurations apart in any fleet and stay readable.
FINGERPRINT_LENGTH = 16


def config_fingerprint(config: RouterConfig) -> str:
    """The stable fingerprint of a configuration.

    Args:
        config: A validated configuration.

    Returns:
        ``sha256:`` and the first :data:`FINGERPRINT_LENGTH` hex digits of the
        digest of its canonical form.
    """
    from ._config import config_to_dict  # the loader builds on the router, not on this

    canonical = json.dumps(
        config_to_dict(config),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
        default=str,
    )
    digest = hashlib.sha256(canonical.encode("ascii")).hexdigest()
    return "sha256:" + digest[:FINGERPRINT_LENGTH]
