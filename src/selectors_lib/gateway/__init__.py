"""The gateway: a reverse proxy data plane that routes with selectors_lib.

:class:`SelectorsProxy` is a plain ASGI app (serve it with uvicorn, or with
``selectors-lib serve``). Laid out like Envoy's data plane, one concept per
module:

* ``_proxy``: the ASGI app, the attempt loop, streaming back;
* ``_routing``: routing decisions (cached) and the key's next replica;
* ``_attempt``: one attempt on a pooled connection, failures classified;
* ``_upstream``: one HTTP/1.1 connection (asyncio protocol, httptools parser);
* ``_pool``: a connection pool per endpoint, with its own limit;
* ``_body``: the request body (kept for retries) and the disconnect listener;
* ``_forwarding``: the headers sent upstream;
* ``_messages``: HTTP message rules (targets, hop-by-hop, framing, Location);
* ``_retry``: which failures are retried, and the retry budget;
* ``_outlier``: passive outlier detection over the health machinery;
* ``_settings``: the ``gateway:`` section of the configuration;
* ``_lifespan``: the configuration's health monitor, run with the lifespan.

Needs ``httptools`` (``pip install 'selectors-lib[gateway]'``); the settings
load without it. See ``docs/gateway.md``.
"""

from __future__ import annotations

from ._lifespan import HealthLifespan
from ._outlier import OUTLIER_REASON, OutlierDetector
from ._proxy import RECORD_KEY, SelectorsProxy, UpstreamError
from ._retry import IDEMPOTENT, RetryBudget
from ._settings import (
    GatewaySettings,
    OutlierSettings,
    RetrySettings,
    RouteSettings,
    parse_gateway_settings,
)

__all__ = [
    "IDEMPOTENT",
    "OUTLIER_REASON",
    "RECORD_KEY",
    "GatewaySettings",
    "HealthLifespan",
    "OutlierDetector",
    "OutlierSettings",
    "RetryBudget",
    "RetrySettings",
    "RouteSettings",
    "SelectorsProxy",
    "UpstreamError",
    "parse_gateway_settings",
]
