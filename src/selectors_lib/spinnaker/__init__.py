"""Spinnaker compatibility: route with existing Orca and Gate selector configs.

Reproduces kork's v1 ``SelectableService`` (priority-ordered selectors with the
first entry as fallback), Orca's and Gate's config shapes, Gate's criteria from
headers and the v2 parameter selector, quirks included, and converts all of it
to the native configuration. See ``docs/spinnaker.md``.

Example::

    import yaml
    from selectors_lib import Criteria
    from selectors_lib.spinnaker import from_orca_config

    svc = from_orca_config(yaml.safe_load(open("orca.yml")), role="readonly")
    svc.select(Criteria(application="deck", execution_type="pipeline")).url
"""

from __future__ import annotations

from selectors_lib._javaregex import JavaPatternError, compile_java, to_lower_root

from ._convert import convert_base_urls, convert_gate, convert_orca, convert_service
from ._parameters import (
    Parameter,
    ParameterEntry,
    ParameterSelectionError,
    ParameterService,
    SelectedService,
    parameter_service,
)
from ._selectors import SELECTOR_CLASSES, Selector, resolve_selector_class
from ._service import SelectableService, SelectorTrace, SpinnakerDecision, selectable_service
from ._shapes import (
    GateService,
    from_gate_config,
    from_orca_config,
    gate_header_mapping,
    orca_criteria,
)

__all__ = [
    "SELECTOR_CLASSES",
    "GateService",
    "JavaPatternError",
    "Parameter",
    "ParameterEntry",
    "ParameterSelectionError",
    "ParameterService",
    "SelectableService",
    "SelectedService",
    "Selector",
    "SelectorTrace",
    "SpinnakerDecision",
    "compile_java",
    "convert_base_urls",
    "convert_gate",
    "convert_orca",
    "convert_service",
    "from_gate_config",
    "from_orca_config",
    "gate_header_mapping",
    "orca_criteria",
    "parameter_service",
    "resolve_selector_class",
    "selectable_service",
    "to_lower_root",
]
