"""What ``selectors-lib serve`` is told: its options, and the errors it reports.

Shared by the command (:mod:`._serve`), the worker (:mod:`._worker`) and the
supervisor (:mod:`._supervisor`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import attrs

from selectors_lib._errors import SelectorsError

__all__ = ["MAX_WORKERS", "WORKER_ENV", "ListenError", "ServeOptions", "require_serve"]

#: More worker processes than this is a typo, not a deployment.
MAX_WORKERS = 256

#: The environment variable a supervisor hands a worker its settings in.
WORKER_ENV = "SELECTORS_LIB_SERVE_WORKER"


def require_serve() -> None:
    """Check that what serve imports later is installed.

    Raises:
        ImportError: httptools or prometheus_client is missing (names the extra).
    """
    for module in ("httptools", "prometheus_client"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise ImportError(
                f"selectors-lib serve needs {module}: pip install 'selectors-lib[serve]'"
            ) from None


class ListenError(SelectorsError, OSError):
    """An address of the gateway cannot be listened on (in use, not permitted)."""


def _between(low: float, high: float) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not low <= value <= high:  # NaN fails too
            flag = "--" + attribute.name.replace("_", "-")
            raise ValueError(f"{flag} must be from {low:g} to {high:g}, got {value!r}")

    return check


@attrs.frozen
class ServeOptions:
    """Everything ``selectors-lib serve`` is told on its command line.

    Args:
        file: The configuration file.
        host: Address the proxy listens on.
        port: Its port (0: a free one, logged at start).
        workers: Worker processes.
        admin_host: Address of the admin endpoints.
        admin_port: Their port (0: a free one; -1: no admin endpoints).
        drain_timeout: Seconds requests in flight get to finish on shutdown.
        drain_delay: Seconds between a stop signal (readiness turns 503) and
            closing the listener.
        reload_interval: Seconds between checks of the file (0: only on SIGHUP).
        access_log: ``text``, ``json`` or ``off``.
        log_level: Level of the process log (stderr).
        trust_user_header: Route on ``X-SPINNAKER-USER`` as sent by the client.
        upstream_timeout: Seconds to wait for an upstream on each read and write
            (None: the proxy's default, or the configuration's).
    """

    file: str
    host: str = "127.0.0.1"
    port: int = attrs.field(default=8080, validator=_between(0, 65535))
    workers: int = attrs.field(default=1, validator=_between(1, MAX_WORKERS))
    admin_host: str = "127.0.0.1"
    admin_port: int = attrs.field(default=9901, validator=_between(-1, 65535))
    drain_timeout: float = attrs.field(default=30.0, validator=_between(0, 86400))
    drain_delay: float = attrs.field(default=0.0, validator=_between(0, 3600))
    reload_interval: float = attrs.field(default=1.0, validator=_between(0, 86400))
    access_log: str = attrs.field(
        default="text", validator=attrs.validators.in_(("text", "json", "off"))
    )
    log_level: str = "info"
    trust_user_header: bool = False
    upstream_timeout: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(_between(0.001, 86400))
    )
