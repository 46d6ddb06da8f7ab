"""The fleet side of the ``selectors-lib`` command: ``fleet`` and ``explain --fleet``.

Kept apart from ``cli.py`` because it needs redis-py (the ``redis`` extra): the
command imports it only when one of these is asked for.
"""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from ._cli_output import _document, _safe, _Style, _table, _UsageError
from ._config import load_config
from ._router import Router
from .cli import EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE
from .health._fleet_view import ejections, fleet_report, fleet_verdicts

__all__ = ["cmd_fleet", "fleet_health"]


def cmd_fleet(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """``selectors-lib fleet FILE``: the shared health plane as the store holds it."""
    config = load_config(args.file)
    try:
        report = fleet_report(config)
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    except Exception as exc:  # the store: redis.RedisError, OSError
        err.write(f"selectors-lib fleet: cannot read the store: {_safe(exc)}\n")
        return EXIT_UNAVAILABLE
    if args.json:
        _document(report, as_json=True, out=out)
        return EXIT_INVALID if report["drift"] else EXIT_OK
    style = _Style(out, args.color)
    out.write(f"fleet {_safe(report['namespace'])!r} on {_safe(report['store'])}\n")
    out.write(f"  this file   {report['fingerprint']}\n")
    leader, snap = report["leader"], report["snapshot"]
    out.write(
        "  leader      "
        + (
            f"{_safe(leader['instance'])} (fence {leader['fence']}, {leader['ttl_ms']} ms left)"
            if leader
            else style.warn("none")
        )
        + "\n"
    )
    if snap is None:
        out.write("  snapshot    none published yet\n")
    elif "error" in snap:
        out.write("  snapshot    " + style.bad(f"invalid: {_safe(snap['error'])}") + "\n")
    else:
        out.write(
            f"  snapshot    generation {snap['generation']} by {_safe(snap['leader'])}, "
            f"{snap['age_s']:g}s old, {snap['endpoints']} endpoints, {_safe(snap['fingerprint'])}\n"
        )
        for item in snap["ejected"]:
            out.write(
                f"  ejected     {_safe(item['endpoint'])} ({_safe(item['reason'])}: "
                f"{_safe(item['detail'], 80)})\n"
            )
    rows = [
        [
            _safe(row["instance"], 60),
            _safe(row["mode"]),
            f"gen {row['generation']}",
            _safe(row["fingerprint"]),
            style.good("in sync") if row["in_sync"] else style.bad("DRIFT"),
        ]
        for row in report["instances"]
    ]
    out.write(f"instances ({len(rows)})\n" + _table(rows))
    return EXIT_INVALID if report["drift"] else EXIT_OK


def fleet_health(router: Router, err: TextIO) -> dict[str, Any] | int:
    """Apply the shared plane's current ejections to ``router`` (``explain --fleet``).

    Returns:
        The snapshot's generation, leader and fingerprint, or an exit code.
    """
    try:
        snapshot = fleet_verdicts(router.config)
    except ValueError as exc:  # no shared section, or an invalid snapshot
        raise _UsageError(f"--fleet: {exc}") from None
    except Exception as exc:  # the store: redis.RedisError, OSError
        err.write(f"selectors-lib explain: cannot read the store: {_safe(exc)}\n")
        return EXIT_UNAVAILABLE
    router.set_health(ejections(snapshot))
    if snapshot is None:
        return {"generation": 0, "leader": "", "fingerprint": ""}
    return {
        "generation": snapshot.generation,
        "leader": snapshot.leader,
        "fingerprint": snapshot.fingerprint,
    }
