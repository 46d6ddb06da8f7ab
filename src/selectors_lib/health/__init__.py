"""Replica health: hysteresis, panic, probes and the monitor that runs them.

Configure probes in the ``health:`` section of the router's configuration, then
run a :class:`HealthMonitor` next to the router::

    router = selectors_lib.load_router("routes.yaml")
    with HealthMonitor.from_router(router):
        serve(router)

See ``docs/health.md`` for the model and how to choose thresholds.
:class:`RedisLagProbe` needs the ``redis`` extra and is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._monitor import GUARD_FACTOR, HealthMonitor, MonitorStatus, ProbeStatus, build_probes
from ._probes import HttpProbe, Probe, ProbeResult
from ._settings import (
    DEFAULT_MAX_LAG_BYTES,
    HealthSettings,
    HttpProbeSettings,
    ProbeSettings,
    RedisLagProbeSettings,
    parse_health_settings,
)
from ._shared_settings import SharedSettings
from ._snapshot import FleetSnapshot, SnapshotError, decode_snapshot, encode_snapshot
from ._state import EndpointState, HealthTracker, Observation, Policy, RoundResult

if TYPE_CHECKING:
    from ._redis import RedisLagProbe, replica_observation
    from ._shared import FleetStatus

__all__ = [
    "DEFAULT_MAX_LAG_BYTES",
    "GUARD_FACTOR",
    "EndpointState",
    "FleetSnapshot",
    "FleetStatus",
    "HealthMonitor",
    "HealthSettings",
    "HealthTracker",
    "HttpProbe",
    "HttpProbeSettings",
    "MonitorStatus",
    "Observation",
    "Policy",
    "Probe",
    "ProbeResult",
    "ProbeSettings",
    "ProbeStatus",
    "RedisLagProbe",
    "RedisLagProbeSettings",
    "RoundResult",
    "SharedSettings",
    "SnapshotError",
    "build_probes",
    "decode_snapshot",
    "encode_snapshot",
    "parse_health_settings",
    "replica_observation",
]

_LAZY = ("RedisLagProbe", "replica_observation")


def __getattr__(name: str) -> Any:
    # redis-py is an optional extra: import the Redis probe only when asked for.
    if name in _LAZY:
        from . import _redis

        return getattr(_redis, name)
    if name == "FleetStatus":
        from . import _shared  # the shared plane's store client is redis-py too

        return _shared.FleetStatus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
