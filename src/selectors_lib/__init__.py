"""selectors_lib: route each request to the right replica.

Priority-ordered rules pick a pool of replicas; consistent hashing on a routing
key picks the replica, so one user, application or execution always reads from
the same one. Start with :func:`load_router`.
"""

from __future__ import annotations

from ._config import config_to_dict, load_config, load_router
from ._criteria import FIELDS, Attributes, Criteria
from ._errors import ConfigError, ConfigIssue, NoEndpointError, SelectorsError
from ._events import (
    Event,
    EventHub,
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
from ._match import FieldMatch, Match
from ._pool import Endpoint, EndpointHealth, Pool
from ._reloader import FileReloader
from ._router import Decision, Router, RouterConfig, Rule, RuleTrace, Settings

__version__ = "0.1.0"

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
