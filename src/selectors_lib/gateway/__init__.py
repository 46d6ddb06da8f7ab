"""The gateway: a reverse proxy that routes every request, and ``selectors-lib serve``.

``selectors-lib serve ROUTES`` runs a production gateway from a configuration
file alone (see ``docs/serve.md``); its implementation lives in private
modules here (``_serve``, ``_options``, ``_worker``, ``_supervisor``, ``_admin``,
``_accesslog``).
"""

from __future__ import annotations

__all__: list[str] = []
