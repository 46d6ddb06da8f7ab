"""The README's main job: route sample requests through the bundled example."""

from __future__ import annotations

import importlib.resources
import pathlib
from typing import TextIO

from ._config import load_config
from ._criteria import Criteria
from ._router import Decision, Router

__all__ = ["SAMPLES", "example_config_text", "run_demo"]

#: Sample requests: what each one is, and its criteria.
SAMPLES: tuple[tuple[str, Criteria], ...] = (
    (
        "Deck user browsing a small application",
        Criteria(origin="deck", authenticated_user="alice@example.com", application="billing"),
    ),
    (
        "Deck user on one of the biggest applications (priority 40 beats the UI rule)",
        Criteria(origin="deck", authenticated_user="alice@example.com", application="playback"),
    ),
    (
        "API call naming the application in capitals (lowercased before matching)",
        Criteria(origin="api", authenticated_user="bob@example.com", application="Edge-Gateway"),
    ),
    (
        "Infrastructure team deploying Titus",
        Criteria(authenticated_user="carol@example.com", application="titus-control-plane"),
    ),
    (
        "The heavy automation user",
        Criteria(authenticated_user="deploy-bot+ci@example.com", application="search"),
    ),
    (
        "Orca polling an orchestration: hashed on the execution id",
        Criteria(
            execution_type="orchestration",
            execution_id="01JD3N6Y8Q2W4E5R6T7Y8U9I0P",
            application="search",
        ),
    ),
    (
        "A pipeline run by a person: the default pool, hashed on the application",
        Criteria(
            execution_type="pipeline", authenticated_user="dave@example.com", application="search"
        ),
    ),
    ("A request with nothing known about it", Criteria()),
)


def example_config_text() -> str:
    """The bundled example configuration (YAML)."""
    return (
        importlib.resources.files(__package__).joinpath("examples/netflix.yaml").read_text("utf-8")
    )


def _describe(criteria: Criteria) -> str:
    shown = [
        f"{name}={value!r}"
        for name, value in (
            ("application", criteria.application),
            ("user", criteria.authenticated_user),
            ("origin", criteria.origin),
            ("execution_type", criteria.execution_type),
            ("execution_id", criteria.execution_id),
        )
        if value is not None
    ]
    return " ".join(shown) or "(no criteria)"


def _render(out: TextIO, router: Router, number: int, title: str, decision: Decision) -> None:
    endpoint = decision.endpoint
    prio = "default" if decision.priority is None else f"priority {decision.priority}"
    won = next(t for t in decision.considered if t.won)
    out.write(f"[{number}] {title}\n")
    out.write(f"    request : {_describe(decision.criteria)}\n")
    out.write(f"    route   : {endpoint.id}  {endpoint.url}\n")
    out.write(f"    rule    : {decision.rule} ({prio})\n")
    out.write(f"    why     : {won.reason}\n")
    outranked = [
        t.name for t in decision.considered if t.matched and not t.won and t.priority is not None
    ]
    if outranked:
        out.write(f"    also matched, lower rank: {', '.join(outranked)}\n")
    if decision.key is not None:
        out.write(f"    key     : {decision.key!r} from {decision.key_source}\n")
    elif _pool_size(router, decision.rule) > 1:
        out.write("    key     : none present; the pool's missing_key policy chose\n")
    for endpoint_id, reason in decision.skipped:
        out.write(f"    skipped : {endpoint_id} {reason}\n")
    out.write("\n")


def _pool_size(router: Router, rule_name: str) -> int:
    config = router.config
    rule = next(r for r in (*config.rules, config.default) if r.name == rule_name)
    return len(rule.target.endpoints)


def run_demo(out: TextIO) -> int:
    """Route :data:`SAMPLES` through the bundled example and print why each went where.

    Args:
        out: Where to write the report.

    Returns:
        A process exit code (0).
    """
    path = importlib.resources.files(__package__).joinpath("examples/netflix.yaml")
    with importlib.resources.as_file(path) as real_path:
        config = load_config(real_path)
    router = Router(config)
    out.write(
        f"selectors_lib demo: {len(SAMPLES)} sample requests through the bundled example"
        f" configuration ({len(config.rules)} rules and a default)\n"
    )
    # Name the file only where a user can open it: an installed package's own
    # copy, not the temporary one as_file() makes for a zipped install.
    if isinstance(path, pathlib.Path):
        out.write(f"    file    : {path}\n")
    out.write("\n")
    for number, (title, criteria) in enumerate(SAMPLES, 1):
        _render(out, router, number, title, router.explain(criteria))

    title, criteria = SAMPLES[0]
    held = router.select(criteria)
    router.mark_down(held, reason="lag", detail="replication offset 48 MiB behind")
    decision = router.explain(criteria)
    out.write(f"Replica {held.id} falls behind its master and is ejected:\n\n")
    _render(out, router, 1, title + ", again", decision)
    router.mark_up(held)
    out.write(
        f"Readmitted, the key returns to {router.select(criteria).id}: reads stay consistent.\n"
    )
    return 0
