"""The ``health.shared`` section: where a fleet's instances share one health plane.

Validated like the rest of ``health``: unknown keys are errors and every
problem is reported with its path (``health.shared.lease``). Nothing here
imports redis-py: a configuration with a shared plane loads without the extra;
only starting the plane needs it.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from selectors_lib._validate import Checker, show

__all__ = ["DEFAULT_MAX_SNAPSHOT_BYTES", "SharedSettings", "parse_shared_settings"]

#: The largest snapshot a follower accepts: about 5,000 endpoints with long details.
DEFAULT_MAX_SNAPSHOT_BYTES = 1 << 20
DEFAULT_NAMESPACE = "selectors"
#: Three default rounds: one slow round never hands leadership over.
DEFAULT_LEASE = 3.0
DEFAULT_STORE_TIMEOUT = 0.25

_KEYS = ("url", "namespace", "lease", "timeout", "max_snapshot_bytes")
_SCHEMES = ("redis", "rediss", "unix")
_NAMESPACE = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
_MAX_SECONDS = 3600.0


@attrs.frozen
class SharedSettings:
    """A health plane shared through Redis by every instance with the same namespace.

    Args:
        url: Redis URL of the store (``redis://``, ``rediss://`` or ``unix://``).
        namespace: Instances with the same namespace on the same store share
            one leader and one verdict set.
        lease: Seconds a leader's lease lasts without renewal: the longest a
            fleet goes without a prober after its leader dies.
        timeout: Seconds each store command may take; past it the instance
            probes locally until the store answers again.
        max_snapshot_bytes: Snapshots larger than this are rejected unread.
    """

    url: str
    namespace: str = DEFAULT_NAMESPACE
    lease: float = DEFAULT_LEASE
    timeout: float = DEFAULT_STORE_TIMEOUT
    max_snapshot_bytes: int = DEFAULT_MAX_SNAPSHOT_BYTES

    def to_dict(self) -> dict[str, Any]:
        """Canonical form, every default spelled out (loadable again)."""
        return {
            "url": self.url,
            "namespace": self.namespace,
            "lease": self.lease,
            "timeout": self.timeout,
            "max_snapshot_bytes": self.max_snapshot_bytes,
        }


def parse_shared_settings(
    check: Checker, raw: object, path: str, interval: float
) -> SharedSettings | None:
    """Validate a ``shared`` section; problems go to ``check``.

    Args:
        check: Collects the issues.
        raw: The parsed section.
        path: Its path (``health.shared``).
        interval: The health section's probe interval (the lease must outlast
            two rounds, or a leader that is merely slow loses it).

    Returns:
        The settings, or None when anything is wrong.
    """
    data = check.mapping(raw, path, _KEYS)
    if data is None:
        return None
    before = len(check.issues)
    url = None
    if "url" not in data:
        check.error(path, "missing key 'url' (the store's redis:// URL)")
    else:
        url = check.url(data["url"], f"{path}.url", _SCHEMES)
    namespace = data.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        check.error(
            f"{path}.namespace",
            f"expected 1 to 100 letters, digits, '_', '.' or '-', got {show(namespace)}",
        )
    lease = _seconds(check, data, "lease", path, DEFAULT_LEASE)
    timeout = _seconds(check, data, "timeout", path, DEFAULT_STORE_TIMEOUT)
    max_bytes: int | None = DEFAULT_MAX_SNAPSHOT_BYTES
    if "max_snapshot_bytes" in data:
        max_bytes = check.integer(
            data["max_snapshot_bytes"], f"{path}.max_snapshot_bytes", 1024, 64 << 20
        )
    if lease is not None and lease < 2 * interval:
        check.error(
            f"{path}.lease",
            f"must be at least twice health.interval ({2 * interval:g}s): the leader renews "
            "it once per round, and one slow round must not hand leadership over",
        )
    if lease is not None and timeout is not None and timeout * 4 > lease:
        check.error(f"{path}.timeout", f"must be at most a quarter of the lease ({lease / 4:g}s)")
    if (
        len(check.issues) != before
        or url is None
        or not isinstance(namespace, str)
        or lease is None
        or timeout is None
        or max_bytes is None
    ):
        return None
    return SharedSettings(url, namespace, lease, timeout, max_bytes)


def _seconds(check: Checker, data: Any, key: str, path: str, default: float) -> float | None:
    if key not in data:
        return default
    return check.number(
        data[key], f"{path}.{key}", 0, _MAX_SECONDS, exclusive_low=True, what="a number of seconds"
    )
