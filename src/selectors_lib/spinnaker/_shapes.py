"""Where Orca and Gate find their ``baseUrls``, and how Gate builds criteria.

Orca (``orca.yml``), for the ``readonly`` or ``writeonly`` clouddriver:

1. ``clouddriver.<role>.baseUrl`` alone: one default selector, priority 1;
2. else ``clouddriver.<role>.baseUrls`` as given;
3. else one default built from the first of ``clouddriver.baseUrl``,
   ``kato.baseUrl``, ``oort.baseUrl``, ``mort.baseUrl`` that is set.

Gate (``gate.yml``), for a service: ``services.<name>.shards.baseUrl``, else
``services.<name>.shards.baseUrls``, else ``services.<name>.baseUrl``. For
clouddriver, ``services.clouddriver.config.dynamicEndpoints`` (origin -> URL)
replaces the shards: one ``ByUserOriginSelector`` per entry at priority 2, then
the default ``services.clouddriver.baseUrl`` at priority 1. Clouddriver requests
only carry criteria when ``dynamic-routing.enabled`` and
``dynamic-routing.clouddriver.enabled`` are both true.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from selectors_lib._criteria import Criteria
from selectors_lib._errors import ConfigError, ConfigIssue
from selectors_lib._headers import HeaderMapping
from selectors_lib._pool import Endpoint
from selectors_lib._validate import key_text, text_problem

from ._selectors import Selector
from ._service import SelectableService, SpinnakerDecision, parse_entries
from ._spring import Issues, as_bool, check_url, describe, lookup

__all__ = [
    "GATE_CRITERIA_FIELDS",
    "GATE_HEADER_FIELDS",
    "ORCA_FALLBACKS",
    "ROLES",
    "GateService",
    "from_gate_config",
    "from_orca_config",
    "gate_header_mapping",
    "orca_criteria",
    "resolve_gate",
    "resolve_orca",
]

ROLES: tuple[str, ...] = ("readonly", "writeonly")
#: Where Orca looks for a clouddriver URL when ``clouddriver.<role>`` has none.
ORCA_FALLBACKS: tuple[tuple[str, ...], ...] = (
    ("clouddriver", "baseUrl"),
    ("kato", "baseUrl"),
    ("oort", "baseUrl"),
    ("mort", "baseUrl"),
)
#: The criteria fields Gate copies from the request context into its criteria.
GATE_CRITERIA_FIELDS: tuple[str, ...] = (
    "application",
    "authenticated_user",
    "execution_id",
    "origin",
    "execution_type",
)
#: Request headers Gate reads into criteria (the origin is derived, the user authenticated).
GATE_HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("x-spinnaker-application", "application"),
    ("x-spinnaker-execution-type", "execution_type"),
    ("x-spinnaker-execution-id", "execution_id"),
)
_NO_CRITERIA = Criteria()


def _document(mapping: object) -> Mapping[str, Any]:
    if not isinstance(mapping, Mapping):
        raise ConfigError.single("", f"expected a parsed YAML mapping, got {describe(mapping)}")
    return mapping


def _single(value: object, path: str, issues: Issues) -> tuple[Selector, ...] | None:
    url = check_url(value, path, "", issues)
    return None if url is None else (Selector(0, url, 1, where=path),)


def _finish(
    selectors: tuple[Selector, ...] | None, issues: Issues, warnings: Issues
) -> SelectableService:
    if issues or not selectors:
        raise ConfigError(issues)
    return SelectableService(selectors, tuple(warnings))


def resolve_orca(
    mapping: Mapping[str, Any], role: str, issues: Issues, warnings: Issues
) -> tuple[Selector, ...] | None:
    """Build the selectors Orca uses for clouddriver ``role`` (see the module docs)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    single = lookup(mapping, ("clouddriver", role, "baseUrl"))
    if single is not None:
        return _single(single, f"clouddriver.{role}.baseUrl", issues)
    many = lookup(mapping, ("clouddriver", role, "baseUrls"))
    if many is not None:
        return parse_entries(many, f"clouddriver.{role}.baseUrls", issues, warnings)
    for path in ORCA_FALLBACKS:
        value = lookup(mapping, path)
        if value is not None:
            return _single(value, ".".join(path), issues)
    issues.append(
        ConfigIssue(
            "clouddriver",
            f"no clouddriver URL: set clouddriver.{role}.baseUrl, clouddriver.{role}.baseUrls "
            "or clouddriver.baseUrl",
        )
    )
    return None


def from_orca_config(mapping: Mapping[str, Any], role: str = "readonly") -> SelectableService:
    """Build the clouddriver selectors an ``orca.yml`` configures.

    Args:
        mapping: The parsed ``orca.yml`` (e.g. ``yaml.safe_load(text)``). Keys
            bind like Spring's: ``base-url`` is ``baseUrl``, and flat dotted keys
            (``clouddriver.readonly.baseUrl: ...``) count.
        role: ``readonly`` or ``writeonly``.

    Returns:
        The :class:`SelectableService`.

    Raises:
        ConfigError: No URL is configured, or an entry is invalid (every issue).
        ValueError: ``role`` is not ``readonly`` or ``writeonly``.
    """
    issues: Issues = []
    warnings: Issues = []
    selectors = resolve_orca(_document(mapping), role, issues, warnings)
    return _finish(selectors, issues, warnings)


def orca_criteria(
    *,
    application: str | None = None,
    authenticated_user: str | None = None,
    execution_type: str | None = None,
    execution_id: str | None = None,
    origin: str | None = None,
    location: str | None = None,
    account: str | None = None,
    cloud_provider: str | None = None,
) -> Criteria:
    """Build criteria from an execution's facts the way Orca does.

    Orca lowercases the execution type (``PIPELINE`` -> ``pipeline``), lowercases
    the account and cloud provider and uses ``unknown`` when they are absent, and
    uses ``unknown`` for an absent origin. The other values pass as given.

    Returns:
        The criteria Orca would hand its clouddriver selectors.
    """
    return Criteria(
        application=application,
        authenticated_user=authenticated_user,
        execution_type=None if execution_type is None else execution_type.lower(),
        execution_id=execution_id,
        origin="unknown" if origin is None else origin,
        location=location,
        account=("unknown" if account is None else account).lower(),
        cloud_provider=("unknown" if cloud_provider is None else cloud_provider).lower(),
    )


def gate_header_mapping(*, trust_user_header: bool = False) -> HeaderMapping:
    """The :class:`~selectors_lib.HeaderMapping` that builds criteria as Gate does.

    Application, execution type and execution id come from the
    ``X-SPINNAKER-*`` headers; the origin is always derived (``deck`` when
    ``X-RateLimit-App`` is ``deck`` in any case, else ``api``), overriding a
    client-sent ``X-SPINNAKER-USER-ORIGIN``; the user comes from authentication
    (or ``X-SPINNAKER-USER`` when ``trust_user_header``).

    Args:
        trust_user_header: Take the user from ``X-SPINNAKER-USER``; only safe
            behind a proxy that sets it and strips clients' copies.
    """
    return HeaderMapping(
        fields=GATE_HEADER_FIELDS, gate_origin=True, trust_user_header=trust_user_header
    )


@attrs.frozen
class GateService:
    """Gate's selection for one backend service.

    Args:
        name: The service (``clouddriver``, ``orca``...).
        service: The selectors.
        routed: Whether requests carry criteria to the selectors. False for
            clouddriver unless both dynamic-routing flags are on: then every
            request is selected with empty criteria.
        header_mapping: How request headers become criteria.
    """

    name: str
    service: SelectableService
    routed: bool = True
    header_mapping: HeaderMapping = attrs.field(factory=gate_header_mapping)

    @property
    def urls(self) -> list[str]:
        """The base URLs, in config order."""
        return self.service.urls

    @property
    def warnings(self) -> tuple[ConfigIssue, ...]:
        """Problems that did not stop loading."""
        return self.service.warnings

    def effective_criteria(self, criteria: Criteria | None) -> Criteria:
        """The criteria Gate hands its selectors for ``criteria``.

        Only the fields Gate copies from its request context survive
        (:data:`GATE_CRITERIA_FIELDS`), and none when dynamic routing is off.

        Raises:
            ValueError: ``criteria`` is ``None``.
        """
        if criteria is None:
            raise ValueError("Criteria is required to select a service")
        if not self.routed:
            return _NO_CRITERIA
        return Criteria(**{field: getattr(criteria, field) for field in GATE_CRITERIA_FIELDS})

    def select(self, criteria: Criteria | None) -> Endpoint:
        """Select as Gate does for ``criteria`` (see :meth:`effective_criteria`).

        Raises:
            ValueError: ``criteria`` is ``None``.
        """
        return self.service.select(self.effective_criteria(criteria))

    def criteria_from_headers(
        self,
        headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
        *,
        user: str | None = None,
    ) -> Criteria:
        """Build criteria from request headers as Gate does (names case-insensitive)."""
        return self.header_mapping.criteria(headers, user=user)

    def select_request(
        self,
        headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
        *,
        user: str | None = None,
    ) -> Endpoint:
        """Select for an HTTP request, building criteria from its headers as Gate does.

        Args:
            headers: The request headers (a mapping, or ``(name, value)`` pairs).
            user: The authenticated user, if the framework knows it.

        Returns:
            The chosen endpoint.
        """
        return self.select(self.criteria_from_headers(headers, user=user))

    def explain(self, criteria: Criteria | None) -> SpinnakerDecision:
        """Route ``criteria`` as :meth:`select` does and say why."""
        return self.service.explain(self.effective_criteria(criteria))


def resolve_gate(
    mapping: Mapping[str, Any], service: str, issues: Issues, warnings: Issues
) -> tuple[tuple[Selector, ...] | None, bool]:
    """Build the selectors Gate uses for ``service`` and whether requests are routed."""
    root = ("services", service)
    routed = True
    if service == "clouddriver":
        flags = []
        for path in (("dynamic-routing", "enabled"), ("dynamic-routing", "clouddriver", "enabled")):
            raw = lookup(mapping, path)
            flags.append(False if raw is None else as_bool(raw, ".".join(path), issues) or False)
        routed = all(flags)
        endpoints = lookup(mapping, (*root, "config", "dynamicEndpoints"))
        if endpoints is not None:
            return _dynamic(mapping, endpoints, issues), routed
    prefix = f"services.{service}"
    single = lookup(mapping, (*root, "shards", "baseUrl"))
    if single is not None:
        return _single(single, f"{prefix}.shards.baseUrl", issues), routed
    many = lookup(mapping, (*root, "shards", "baseUrls"))
    if many is not None:
        return parse_entries(many, f"{prefix}.shards.baseUrls", issues, warnings), routed
    base = lookup(mapping, (*root, "baseUrl"))
    if base is not None:
        return _single(base, f"{prefix}.baseUrl", issues), routed
    issues.append(
        ConfigIssue(
            prefix,
            f"no URL for {service}: set {prefix}.baseUrl or {prefix}.shards.baseUrl(s)",
        )
    )
    return None, routed


def _dynamic(
    mapping: Mapping[str, Any], endpoints: object, issues: Issues
) -> tuple[Selector, ...] | None:
    path = "services.clouddriver.config.dynamicEndpoints"
    before = len(issues)
    default = lookup(mapping, ("services", "clouddriver", "baseUrl"))
    default_url = None
    if default is None:
        issues.append(
            ConfigIssue(
                "services.clouddriver.baseUrl",
                "missing: dynamicEndpoints needs the default clouddriver URL",
            )
        )
    else:
        default_url = check_url(default, "services.clouddriver.baseUrl", "", issues)
    if not isinstance(endpoints, Mapping):
        issues.append(
            ConfigIssue(path, f"expected a map of origin to URL, got {describe(endpoints)}")
        )
        return None
    selectors: list[Selector] = []
    # Map order: Gate builds one selector per entry as it iterates the map.
    for index, (origin, url) in enumerate(endpoints.items()):
        at = f"{path}.{key_text(origin)}"
        if not isinstance(origin, str):
            issues.append(ConfigIssue(at, f"an origin must be a string, got {describe(origin)}"))
            continue
        problem = text_problem(origin)
        if problem is not None:
            # It becomes a rule's description and an output document's text.
            issues.append(ConfigIssue(at, f"the origin {problem}"))
            continue
        checked = check_url(url, at, f"origin {origin!r}: ", issues)
        if checked is not None:
            selectors.append(
                Selector(index, checked, 2, "ByUserOriginSelector", origin=origin, where=at)
            )
    if len(issues) != before or default_url is None:
        return None
    selectors.append(Selector(len(selectors), default_url, 1, where="services.clouddriver.baseUrl"))
    return tuple(selectors)


def from_gate_config(
    mapping: Mapping[str, Any], service: str = "clouddriver", *, trust_user_header: bool = False
) -> GateService:
    """Build Gate's selection for one service from a ``gate.yml``.

    Args:
        mapping: The parsed ``gate.yml`` (keys bind like Spring's, see
            :func:`from_orca_config`).
        service: The service under ``services`` (``clouddriver``, ``orca``...).
        trust_user_header: Let :meth:`GateService.select_request` take the user
            from ``X-SPINNAKER-USER`` (see :func:`gate_header_mapping`).

    Returns:
        The :class:`GateService`.

    Raises:
        ConfigError: No URL is configured, or an entry or flag is invalid.
    """
    issues: Issues = []
    warnings: Issues = []
    selectors, routed = resolve_gate(_document(mapping), service, issues, warnings)
    built = _finish(selectors, issues, warnings)
    return GateService(
        service, built, routed, gate_header_mapping(trust_user_header=trust_user_header)
    )
