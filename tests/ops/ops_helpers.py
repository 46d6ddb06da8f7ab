"""Shared helpers for the operations tests: configurations and metric scrapers."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

ENDPOINTS = {f"r{i}": f"http://r{i}.internal:8080" for i in range(1, 7)}


def config_a() -> dict[str, Any]:
    """Tenants t0-t4 go to r1-r3, app-* applications to r4-r6, the rest to r1."""
    return {
        "version": 1,
        "endpoints": dict(ENDPOINTS),
        "routes": [
            {
                "name": "a-hot",
                "priority": 10,
                "match": {"attributes": {"x-tenant": {"regex": "t[0-4]"}}},
                "target": {
                    "endpoints": ["r1", "r2", "r3"],
                    "hash_on": ["execution_id", "application"],
                    "algorithm": "ring",
                },
            },
            {
                "name": "a-cold",
                "priority": 5,
                "match": {"application": {"regex": "app-.*", "case": "lower"}},
                "target": {
                    "endpoints": ["r4", "r5", "r6"],
                    "hash_on": ["execution_id"],
                    "algorithm": "rendezvous",
                },
            },
            {"name": "a-default", "default": True, "target": "r1"},
        ],
    }


def config_b() -> dict[str, Any]:
    """The mirror image of :func:`config_a`: every request set changes side."""
    return {
        "version": 1,
        "endpoints": dict(ENDPOINTS),
        "routes": [
            {
                "name": "b-hot",
                "priority": 10,
                "match": {"attributes": {"x-tenant": {"regex": "t[0-4]"}}},
                "target": {
                    "endpoints": ["r4", "r5", "r6"],
                    "hash_on": ["execution_id", "application"],
                    "algorithm": "jump",
                },
            },
            {
                "name": "b-cold",
                "priority": 5,
                "match": {"application": {"regex": "app-.*", "case": "lower"}},
                "target": {
                    "endpoints": ["r1", "r2", "r3"],
                    "hash_on": ["execution_id"],
                    "algorithm": "slots",
                },
            },
            {"name": "b-default", "default": True, "target": "r6"},
        ],
    }


def with_changes(config: Mapping[str, Any], **top: Any) -> dict[str, Any]:
    """A deep copy of ``config`` with top-level keys replaced."""
    out = copy.deepcopy(dict(config))
    out.update(top)
    return out


Sample = tuple[str, frozenset[tuple[str, str]]]


def scrape(registry: CollectorRegistry) -> dict[Sample, float]:
    """Render ``registry`` in the text exposition format and parse it back.

    Returns:
        ``{(sample name, labels): value}`` for every sample exposed.
    """
    text = generate_latest(registry).decode("utf-8")
    out: dict[Sample, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Mapping[Sample, float], name: str, **labels: str) -> float:
    """One sample's value, or 0.0 when the series does not exist."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def is_nan(x: float) -> bool:
    return math.isnan(x)
