"""An endpoint's health as a router records it: :class:`EndpointHealth`.

Apart from the pools (``_pool``): routing reads only ``healthy``, and a router
that never sees a health change never builds one, so importing the package does
not create the class (see docs/scale.md, "Import cost").
"""

from __future__ import annotations

import attrs

__all__ = ["EndpointHealth"]


@attrs.frozen
class EndpointHealth:
    """Whether an endpoint takes traffic, and since when.

    Args:
        healthy: False when ejected.
        reason: Why it was ejected: ``manual``, ``probe``, ``lag`` (None when healthy).
        detail: Free text for operators (the probe error, the lag in bytes...).
        since: Unix time of the last change.
    """

    healthy: bool = True
    reason: str | None = None
    detail: str = ""
    since: float = 0.0
