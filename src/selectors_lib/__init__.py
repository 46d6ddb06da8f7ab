"""selectors_lib: route each request to the right replica.

Priority-ordered rules pick a pool of replicas; consistent hashing on a routing
key picks the replica, so one user, application or execution always reads from
the same one. Start with :func:`load_router`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._criteria import FIELDS, Attributes, Criteria
from ._errors import ConfigError, NoEndpointError, SelectorsError
from ._hub import EventHub
from ._lazy import lazy_attributes as _lazy_attributes
from ._match import FieldMatch, Match
from ._pool import Endpoint, Pool
from ._router import Router, RouterConfig, Rule, Settings
from ._router import install_loader as _install_loader

if TYPE_CHECKING:
    from ._config import config_to_dict, load_config, load_router
    from ._decision import Decision, RuleTrace
    from ._endpoint_health import EndpointHealth
    from ._events import (
        Event,
        FleetEvent,
        HealthEvent,
        LagEvent,
        MetricsObserver,
        Observer,
        ReloadEvent,
        SelectEvent,
    )
    from ._fingerprint import config_fingerprint
    from ._headers import HeaderMapping
    from ._issues import ConfigIssue
    from ._reloader import FileReloader

__version__ = "0.1.0"

# Public names whose modules select() never needs, imported on first use:
# the reloader pulls in asyncio (about half the import time), the loader its
# validators, JSON/YAML readers and the Java dialect's tables; explanations,
# events and fingerprints are attrs classes (or hashing) select() never builds.
_LAZY = {
    "ConfigIssue": "._issues",
    "Decision": "._decision",
    "EndpointHealth": "._endpoint_health",
    "Event": "._events",
    "FileReloader": "._reloader",
    "FleetEvent": "._events",
    "HeaderMapping": "._headers",
    "HealthEvent": "._events",
    "LagEvent": "._events",
    "MetricsObserver": "._events",
    "Observer": "._events",
    "ReloadEvent": "._events",
    "RuleTrace": "._decision",
    "SelectEvent": "._events",
    "config_fingerprint": "._fingerprint",
    "config_to_dict": "._config",
    "load_config": "._config",
    "load_router": "._config",
}


def _load_on_first_reload(source: Any) -> RouterConfig:
    # Router.reload() works before the loader module is imported: importing
    # it installs the real loader in place of this one.
    from ._config import load_config as load

    return load(source)


_install_loader(_load_on_first_reload)


if not TYPE_CHECKING:  # mypy reads the imports above: a misspelt name stays an error
    __getattr__, __dir__ = _lazy_attributes(__name__, _LAZY, globals())


__all__ = [
    "FIELDS",
    "Attributes",
    "ConfigError",
    "ConfigIssue",
    "Criteria",
    "Decision",
    "Endpoint",
    "EndpointHealth",
    "Event",
    "EventHub",
    "FieldMatch",
    "FileReloader",
    "FleetEvent",
    "HeaderMapping",
    "HealthEvent",
    "LagEvent",
    "Match",
    "MetricsObserver",
    "NoEndpointError",
    "Observer",
    "Pool",
    "ReloadEvent",
    "Router",
    "RouterConfig",
    "Rule",
    "RuleTrace",
    "SelectEvent",
    "SelectorsError",
    "Settings",
    "config_fingerprint",
    "config_to_dict",
    "load_config",
    "load_router",
]
