"""Flip reads from a lagging replica stack to a fresh one, only once it is in sync.

The steps of "Rebuilding instead of nursing" in ``docs/health.md``: validate the
new configuration, check every replica it names with the same lag probe the
monitor uses, swap the configuration in atomically, and move the monitor over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selectors_lib import Router, load_config
from selectors_lib.health import (
    HealthMonitor,
    HealthSettings,
    RedisLagProbe,
    RedisLagProbeSettings,
)


class FlipRefused(RuntimeError):
    """The new stack is not ready: nothing was changed."""


def stack_config(master: str, replicas: Mapping[str, str], max_lag_bytes: int) -> dict[str, Any]:
    """A configuration that routes every read to ``replicas`` (id -> redis URL)."""
    return {
        "endpoints": dict(replicas),
        "routes": [
            {
                "name": "reads",
                "default": True,
                "target": {"endpoints": list(replicas), "hash_on": ["authenticated_user"]},
            }
        ],
        "health": {
            "interval": 0.1,
            "timeout": 0.5,
            "probes": [
                {
                    "type": "redis_lag",
                    "name": "cache",
                    "master": master,
                    "replicas": list(replicas),
                    "max_lag_bytes": max_lag_bytes,
                }
            ],
        },
    }


def flip(router: Router, monitor: HealthMonitor, new_config: Mapping[str, Any]) -> HealthMonitor:
    """Serve ``new_config`` if all its replicas are in sync; return the monitor now running.

    Raises:
        ConfigError: ``new_config`` is invalid (nothing changed).
        FlipRefused: A replica of the new stack lags or does not answer (nothing changed).
    """
    config = load_config(new_config)
    health = config.health
    if isinstance(health, HealthSettings):
        for spec in health.probes:
            if not isinstance(spec, RedisLagProbeSettings):
                continue
            probe = RedisLagProbe(spec)
            try:
                result = probe.check(health.timeout)
            finally:
                probe.close()
            behind = {eid: obs.detail for eid, obs in result.observations if obs.ok is not True}
            if not result.master_ok or behind:
                raise FlipRefused(f"{spec.name}: {result.detail or behind}")
    router.replace_config(config)  # atomic: each request sees the old stack or the new one
    monitor.stop()
    return HealthMonitor.from_router(router).start()
