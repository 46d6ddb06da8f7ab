"""The ``selectors-lib`` command: check, explain and simulate routing from a terminal.

Subcommands (``selectors-lib <command> --help`` for each):

``validate FILE``   every error with its path; warnings for shadowed rules and risky patterns
``explain FILE``    where one request goes and why, rule by rule (``--json`` too)
``dump FILE``       the effective configuration in canonical form (YAML, or ``--json``)
``simulate FILE``   N synthetic keys through a pool: spread, and movement on changes
``demo``            route sample requests through the bundled example
``convert``         Spinnaker ``orca.yml``/``gate.yml``/``baseUrls`` to native configuration
``serve FILE``      run a routing gateway (``pip install 'selectors-lib[serve]'``)
``fleet FILE``      the shared health plane: leader, snapshot generation, instances' fingerprints

Exit codes: see :data:`EXIT_CODES` (and ``docs/cli.md``). Honours ``NO_COLOR``;
colour only on a terminal. Errors go to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from ._cli_output import _document, _safe, _Style, _table, _UsageError
from ._config import config_to_dict, load_config, read_source
from ._criteria import FIELDS, Criteria
from ._errors import ConfigError, ConfigIssue, NoEndpointError
from ._headers import DEFAULT_HEADER_FIELDS, USER_HEADER, HeaderMapping
from ._router import Decision, Router, RouterConfig
from ._simulate import _render_simulation, simulate

__all__ = [
    "EXIT_CODES",
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_NO_ENDPOINT",
    "EXIT_OK",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "main",
]

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_NO_ENDPOINT = 3
EXIT_UNAVAILABLE = 4
EXIT_INTERRUPTED = 130

#: Every exit code and what it means.
EXIT_CODES: Mapping[int, str] = {
    EXIT_OK: "success",
    EXIT_INVALID: "the configuration is invalid or unreadable (or has warnings, with --strict)",
    EXIT_USAGE: "bad command line",
    EXIT_NO_ENDPOINT: "explain: the winning pool rejects a request without a routing key",
    EXIT_UNAVAILABLE: "an optional dependency or module is missing (e.g. PyYAML for .yaml)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}

MAX_KEYS = 1_000_000


def _issue_dict(issue: ConfigIssue) -> dict[str, str]:
    return {"path": issue.path, "message": issue.message}


def _load(path: str) -> RouterConfig:
    return load_config(path)


# -- validate ---------------------------------------------------------------------------


def _cmd_validate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    style_err = _Style(err, args.color)
    try:
        config = _load(args.file)
    except ConfigError as exc:
        if args.json:
            errors = [_issue_dict(i) for i in exc.issues]
            _document(
                {"file": args.file, "valid": False, "errors": errors, "warnings": []},
                as_json=True,
                out=out,
            )
        else:
            count = len(exc.issues)
            err.write(f"{_safe(args.file)}: {count} error{'s' if count != 1 else ''}\n")
            for issue in exc.issues:
                err.write(f"  {style_err.bad('error')}: {_safe(issue, 500)}\n")
        return EXIT_INVALID
    warnings = config.warnings
    if args.json:
        _document(
            {
                "file": args.file,
                "valid": True,
                "errors": [],
                "warnings": [_issue_dict(w) for w in warnings],
            },
            as_json=True,
            out=out,
        )
    else:
        for warning in warnings:
            err.write(f"  {style_err.warn('warning')}: {_safe(warning, 500)}\n")
        style = _Style(out, args.color)
        routes = len(config.rules) + 1
        summary = (
            f"{_safe(args.file)}: {style.good('valid')} "
            f"({routes} route{'s' if routes != 1 else ''}, {len(config.endpoints)} endpoint"
            f"{'s' if len(config.endpoints) != 1 else ''}"
        )
        if warnings:
            summary += f", {len(warnings)} warning{'s' if len(warnings) != 1 else ''}"
        out.write(summary + ")\n")
    return EXIT_INVALID if args.strict and warnings else EXIT_OK


# -- explain ----------------------------------------------------------------------------


def _pairs(values: Sequence[str], sep: str, what: str) -> list[tuple[str, str]]:
    out = []
    for raw in values:
        name, found, value = raw.partition(sep)
        if not found or not name.strip():
            raise _UsageError(f"{what} must look like NAME{sep}VALUE, got {raw!r}")
        out.append((name.strip(), value.strip() if sep == ":" else value))
    return out


def _criteria(args: argparse.Namespace, err: TextIO) -> Criteria:
    headers = _pairs(args.header, ":", "--header")
    known = {h for h, _ in DEFAULT_HEADER_FIELDS} | {USER_HEADER, "x-ratelimit-app"}
    mapping = HeaderMapping(
        # Headers the Spinnaker mapping does not know become attributes, so
        # rules on attributes can be tried from the command line.
        attributes=tuple(n.lower() for n, _ in headers if n.lower() not in known),
        trust_user_header=args.trust_user_header,
        gate_origin=args.gate_origin,
    )
    base = mapping.criteria(headers)
    if not args.trust_user_header and any(n.lower() == USER_HEADER for n, _ in headers):
        err.write(
            "note: X-SPINNAKER-USER ignored, as gateways do by default (the user comes from "
            "authentication); use --user or --trust-user-header\n"
        )
    values = {f: getattr(base, f) for f in FIELDS}
    for field in FIELDS:
        given = getattr(args, field)
        if given is not None:
            values[field] = given
    attributes = dict(base.attributes)
    attributes.update((n.lower(), v) for n, v in _pairs(args.attr, "=", "--attr"))
    return Criteria(**values, attributes=attributes)


def _render_decision(decision: Decision, out: TextIO, style: _Style) -> None:
    endpoint = decision.endpoint
    prio = "default rule" if decision.priority is None else f"priority {decision.priority}"
    rows = [
        ["endpoint", style.bold(_safe(endpoint.id)) + "  " + _safe(endpoint.url)],
        ["rule", f"{_safe(decision.rule)} ({prio})"],
    ]
    if decision.key is not None:
        rows.append(["key", f"{_safe(repr(decision.key))} from {decision.key_source}"])
    else:
        rows.append(["key", style.dim("none")])
    if decision.failover and decision.first_choice is not None:
        rows.append(["failover", f"first choice {_safe(decision.first_choice.id)} is down"])
    for endpoint_id, reason in decision.skipped:
        rows.append(["skipped", f"{_safe(endpoint_id)}: {_safe(reason)}"])
    if decision.panic:
        rows.append(["panic", style.warn("too few live replicas: health ignored")])
    out.write(style.bold("Decision") + "\n")
    out.write(_table(rows))

    criteria = decision.criteria
    given = [[f, _safe(getattr(criteria, f))] for f in FIELDS if getattr(criteria, f) is not None]
    given += [[f"attributes.{_safe(k)}", _safe(v)] for k, v in sorted(criteria.attributes.items())]
    out.write("\n" + style.bold("Criteria") + "\n")
    out.write(_table(given) if given else "  " + style.dim("(none: nothing known)") + "\n")

    out.write("\n" + style.bold("Rules, in the order tried") + "\n")
    rows = [["", "RULE", "PRIORITY", "RESULT"]]
    for trace in decision.considered:
        mark = "*" if trace.won else ("+" if trace.matched else "-")
        priority = "default" if trace.priority is None else str(trace.priority)
        reason = _safe(trace.reason, 300)
        if trace.won:
            reason = style.good(reason)
        elif not trace.matched:
            reason = style.dim(reason)
        rows.append([mark, _safe(trace.name, 60), priority, reason])
    out.write(_table(rows))
    out.write(style.dim("  * won   + matched, outranked   - did not match") + "\n")


def _cmd_explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = _load(args.file)
    router = Router(config)
    for endpoint_id in args.down:
        try:
            router.mark_down(endpoint_id, reason="manual", detail="--down")
        except KeyError:
            known = ", ".join(e.id for e in config.endpoints)
            raise _UsageError(
                f"--down: unknown endpoint {endpoint_id!r} (known: {known})"
            ) from None
    fleet = _fleet_health(router, err) if args.fleet else None
    if isinstance(fleet, int):
        return fleet
    criteria = _criteria(args, err)
    try:
        decision = router.explain(criteria)
    except NoEndpointError as exc:
        err.write(f"error: no endpoint: {exc}\n")
        return EXIT_NO_ENDPOINT
    if args.json:
        document = decision.to_dict()
        if fleet:
            document["fleet"] = fleet
        _document(document, as_json=True, out=out)
    else:
        if fleet:
            leader = _safe(fleet["leader"])
            out.write(f"fleet health generation {fleet['generation']} by {leader}\n")
        _render_decision(decision, out, _Style(out, args.color))
    return EXIT_OK


def _fleet_health(router: Router, err: TextIO) -> dict[str, Any] | int:
    from ._fleet_cli import fleet_health  # needs redis-py: ImportError names the extra

    return fleet_health(router, err)


# -- dump -------------------------------------------------------------------------------


def _cmd_dump(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    _document(config_to_dict(_load(args.file)), as_json=args.json, out=out)
    return EXIT_OK


# -- simulate ---------------------------------------------------------------------------


def _cmd_simulate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    report = simulate(_load(args.file), args.rule, args.keys)
    if args.json:
        _document(report, as_json=True, out=out)
    else:
        _render_simulation(report, out, _Style(out, args.color), args.width)
    return EXIT_OK


# -- demo and convert -------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._demo import run_demo

    return run_demo(out)


def _cmd_convert(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from . import spinnaker

    data = read_source(args.file)
    notes: list[str] = []
    try:
        if args.base_urls:
            entries = data.get("baseUrls", data) if isinstance(data, Mapping) else data
            native = spinnaker.convert_base_urls(entries, notes=notes)
        elif not isinstance(data, Mapping):
            raise ConfigError.single("", "expected a mapping at the top of the file")
        elif args.orca:
            native = spinnaker.convert_orca(data, args.role, notes=notes)
        else:
            native = spinnaker.convert_gate(data, args.service, notes=notes)
    except ConfigError as exc:
        raise ConfigError(exc.issues, args.file) from None
    for note in notes:
        err.write(f"note: {_safe(note, 500)}\n")
    _document(native, as_json=args.json, out=out)
    return EXIT_OK


# -- the parser -------------------------------------------------------------------------


def _positive_keys(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= MAX_KEYS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_KEYS}, got {value}")
    return value


def _width(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= value <= 500:
        raise argparse.ArgumentTypeError("must be from 1 to 500")
    return value


_EPILOG = "exit codes:\n" + "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODES.items())


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``selectors-lib`` (exposed for documentation and tests)."""
    from . import __version__

    def color_option(default: str) -> argparse.ArgumentParser:
        holder = argparse.ArgumentParser(add_help=False)
        holder.add_argument(
            "--color",
            choices=("auto", "always", "never"),
            default=default,
            help="colour output: auto (default) colours a terminal unless NO_COLOR is set",
        )
        return holder

    # Accepted before and after the command; a subcommand's default must not
    # overwrite a value given before it, hence SUPPRESS there.
    common = color_option(argparse.SUPPRESS)
    parser = argparse.ArgumentParser(
        prog="selectors-lib",
        description="Check, explain and simulate selectors_lib routing configurations.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[color_option("auto")],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_text,
            description=description,
            epilog=_EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )

    p = command(
        "validate",
        "check a configuration file",
        "Load FILE and report every error with its path (exit 1), and warnings for rules "
        "that can never win or patterns that may backtrack.",
    )
    p.add_argument("file", metavar="FILE", help="a .yaml/.yml, .toml or .json configuration")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) on warnings too")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(handler=_cmd_validate)

    p = command(
        "explain",
        "show where a request goes and why",
        "Route one request described by the options and show the decision: the endpoint, "
        "the winning rule, the routing key, and every rule in the order tried.",
    )
    p.add_argument("file", metavar="FILE", help="the configuration")
    group = p.add_argument_group("request")
    for field in FIELDS:
        flag = "--user" if field == "authenticated_user" else "--" + field.replace("_", "-")
        group.add_argument(flag, dest=field, metavar="VALUE", help=f"criteria field {field}")
    group.add_argument(
        "--attr",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an attribute (repeatable); rules match it as attributes.NAME",
    )
    group.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header (repeatable): X-SPINNAKER-* fill their fields, others become "
        "attributes; explicit options win",
    )
    group.add_argument(
        "--trust-user-header",
        action="store_true",
        help="take the user from X-SPINNAKER-USER (gateways do not, by default)",
    )
    group.add_argument(
        "--gate-origin",
        action="store_true",
        help="derive origin as Gate does: deck if X-RateLimit-App is deck, else api",
    )
    p.add_argument(
        "--down",
        action="append",
        default=[],
        metavar="ENDPOINT",
        help="treat this endpoint as down (repeatable)",
    )
    p.add_argument(
        "--fleet",
        action="store_true",
        help="apply the ejections of the shared health plane FILE names (health.shared)",
    )
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.set_defaults(handler=_cmd_explain)

    p = command(
        "dump",
        "print the effective configuration",
        "Print the configuration as loaded, in canonical form with every default spelled "
        "out: YAML if PyYAML is installed, else JSON.",
    )
    p.add_argument("file", metavar="FILE", help="the configuration")
    p.add_argument("--json", action="store_true", help="print JSON even if PyYAML is installed")
    p.set_defaults(handler=_cmd_dump)

    p = command(
        "simulate",
        "spread synthetic keys over a pool",
        "Hash N synthetic keys through a rule's pool: the share each replica gets (as a "
        "histogram), and the share of keys that moves if a replica is added, removed or "
        "marked down.",
    )
    p.add_argument("file", metavar="FILE", help="the configuration")
    p.add_argument("--rule", metavar="NAME", help="the rule whose pool to use (default: default)")
    p.add_argument(
        "--keys",
        type=_positive_keys,
        default=10_000,
        metavar="N",
        help=f"how many keys (default 10000, at most {MAX_KEYS})",
    )
    p.add_argument("--width", type=_width, default=40, help="histogram width (default 40)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_cmd_simulate)

    p = command(
        "demo",
        "route sample requests through the bundled example",
        "Route sample Spinnaker requests through the bundled example configuration and say "
        "why each went where, then eject a replica and show only its keys move.",
    )
    p.set_defaults(handler=_cmd_demo)

    p = command(
        "convert",
        "convert a Spinnaker config to native configuration",
        "Convert the service selectors of an orca.yml, a gate.yml, or a list of baseUrls "
        "entries to a native configuration that routes identically. Dropped selectors are "
        "noted on stderr.",
    )
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--orca", action="store_true", help="FILE is an orca.yml")
    kind.add_argument("--gate", action="store_true", help="FILE is a gate.yml")
    kind.add_argument(
        "--base-urls", action="store_true", help="FILE holds baseUrls entries (a list)"
    )
    p.add_argument("file", metavar="FILE", help="the Spinnaker configuration (.yml, .json)")
    p.add_argument(
        "--role",
        choices=("readonly", "writeonly"),
        default="readonly",
        help="with --orca: which clouddriver selection (default readonly)",
    )
    p.add_argument(
        "--service",
        default="clouddriver",
        metavar="NAME",
        help="with --gate: which service (default clouddriver)",
    )
    p.add_argument("--json", action="store_true", help="print JSON even if PyYAML is installed")
    p.set_defaults(handler=_cmd_convert)

    p = command(
        "serve",
        "run a routing gateway",
        "Run a reverse proxy that routes every request by ROUTES: health probes from its "
        "health: section, reload on change and on SIGHUP, graceful drain on SIGTERM, "
        "metrics and readiness on an admin port, an access log line per request. Needs "
        "pip install 'selectors-lib[serve]'. See docs/serve.md.",
    )
    p.add_argument("file", metavar="ROUTES", help="the configuration")
    p.add_argument("--host", default="127.0.0.1", help="proxy address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="proxy port (default 8080; 0: any)")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="processes (default 1)")
    p.add_argument("--admin-host", default="127.0.0.1", help="admin address (default 127.0.0.1)")
    p.add_argument(
        "--admin-port", type=int, default=9901, help="admin port (default 9901; 0: any; -1: off)"
    )
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM, how long requests in flight may take to finish (default 30)",
    )
    p.add_argument(
        "--drain-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="on SIGTERM, keep accepting this long while /readyz says 503 (default 0)",
    )
    p.add_argument(
        "--reload-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="how often to check ROUTES for changes (default 1; 0: only on SIGHUP)",
    )
    p.add_argument(
        "--access-log",
        choices=("text", "json", "off"),
        default="text",
        help="access log lines on stdout (default text)",
    )
    p.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="process log level, on stderr (default info)",
    )
    p.add_argument(
        "--trust-user-header",
        action="store_true",
        help="route on X-SPINNAKER-USER as the client sends it (only behind a trusted edge)",
    )
    p.add_argument(
        "--upstream-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds to wait for an upstream on each read and write (default: the proxy's)",
    )
    p.set_defaults(handler=_cmd_serve)

    p = command(
        "fleet",
        "show the fleet's shared health plane",
        "Read the store named by FILE's health.shared section: the leader and its lease, "
        "the current snapshot (generation, ejected endpoints), and each instance's mode, "
        "generation and configuration fingerprint. Exit 1 when any serves another "
        "configuration than FILE (drift).",
    )
    p.add_argument("file", metavar="FILE", help="the configuration (with health.shared)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_cmd_fleet)
    return parser


def _cmd_fleet(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from ._fleet_cli import cmd_fleet  # needs redis-py: ImportError names the extra

    return cmd_fleet(args, out, err)


def _cmd_serve(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    # Only now: httptools and prometheus_client are an optional extra.
    from .gateway._serve import ListenError, ServeOptions, run

    try:
        options = ServeOptions(
            file=args.file,
            host=args.host,
            port=args.port,
            workers=args.workers,
            admin_host=args.admin_host,
            admin_port=args.admin_port,
            drain_timeout=args.drain_timeout,
            drain_delay=args.drain_delay,
            reload_interval=args.reload_interval,
            access_log=args.access_log,
            log_level=args.log_level,
            trust_user_header=args.trust_user_header,
            upstream_timeout=args.upstream_timeout,
        )
    except ValueError as exc:
        raise _UsageError(str(exc)) from None
    try:
        return run(options)
    except ListenError as exc:
        raise _UsageError(str(exc)) from None


def _exit_code(code: object) -> int:
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """Run ``selectors-lib`` with ``argv`` (default ``sys.argv[1:]``).

    Args:
        argv: The arguments, without the program name.

    Returns:
        The exit code (see :data:`EXIT_CODES`); never raises ``SystemExit``.
    """
    parser = build_parser()
    out, err = sys.stdout, sys.stderr
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, and usage errors
        return _exit_code(exc.code)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(err)
        return EXIT_USAGE
    try:
        code: int = handler(args, out, err)
    except _UsageError as exc:
        err.write(f"selectors-lib {args.command}: error: {exc}\n")
        return EXIT_USAGE
    except ConfigError as exc:
        count = len(exc.issues)
        where = _safe(exc.source or getattr(args, "file", ""))
        err.write(f"{where}: invalid configuration ({count} error{'s' if count != 1 else ''})\n")
        for issue in exc.issues:
            err.write(f"  error: {_safe(issue, 500)}\n")
        return EXIT_INVALID
    except ImportError as exc:
        err.write(f"selectors-lib {args.command}: {exc}\n")
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (| head): stop quietly, and keep the interpreter
        # from complaining while flushing stdout at exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_OK
    return code
