"""The selectors-lib command, driven through main([...]) with captured output."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from selectors_lib import config_to_dict, load_config
from selectors_lib.cli import (
    EXIT_INVALID,
    EXIT_NO_ENDPOINT,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
    main,
)

ROOT = Path(__file__).resolve().parents[2]
NETFLIX = ROOT / "src/selectors_lib/examples/netflix.yaml"

CONFIG: dict[str, Any] = {
    "version": 1,
    "endpoints": {
        "ro-1": "https://ro-1.example.net",
        "ro-2": "https://ro-2.example.net",
        "ro-3": "https://ro-3.example.net",
        "ui": "https://ui.example.net",
    },
    "routes": [
        {"name": "ui", "priority": 10, "match": {"origin": "deck"}, "target": "ui"},
        {
            "name": "tenants",
            "priority": 5,
            "match": {"attributes": {"x-tenant": ["blue", "green"]}},
            "target": "ro-3",
        },
        {
            "name": "strict",
            "match": {"application": "strict"},
            "target": {
                "endpoints": ["ro-1", "ro-2"],
                "hash_on": ["execution_id"],
                "missing_key": "reject",
            },
        },
        {
            "name": "main",
            "default": True,
            "target": {
                "endpoints": ["ro-1", "ro-2", {"id": "ro-3", "weight": 2}],
                "hash_on": ["authenticated_user", "application"],
            },
        },
    ],
}


def write(tmp_path: Path, data: Any, name: str = "routes.json") -> str:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(data))
    elif name.endswith((".yaml", ".yml")):
        path.write_text(yaml.safe_dump(data))
    else:
        path.write_text(data)
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- validate ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["routes.json", "routes.yaml"])
def test_validate_a_good_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, out, err = run(capsys, "validate", write(tmp_path, CONFIG, name))
    assert code == EXIT_OK
    assert out.endswith(f"{name}: valid (4 routes, 4 endpoints)\n")
    assert err == ""


def test_validate_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = (
        'version = 1\n[endpoints]\na = "https://a.example"\n'
        '[[routes]]\nname = "main"\ndefault = true\ntarget = "a"\n'
    )
    code, out, _ = run(capsys, "validate", write(tmp_path, toml, "routes.toml"))
    assert (code, out.split(": ")[1]) == (EXIT_OK, "valid (1 route, 1 endpoint)\n")


def test_validate_reports_every_error_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {
        "endpoints": {"a": "not a url"},
        "routes": [
            {"name": "x", "match": {"application": {"regex": "("}}, "target": "a"},
            {"name": "y", "priority": "high", "target": "nowhere"},
        ],
    }
    code, out, err = run(capsys, "validate", write(tmp_path, bad))
    assert code == EXIT_INVALID
    assert out == ""
    for path in (
        "endpoints.a",
        "routes[0].match.application.regex",
        "routes[1].priority",
        "routes:",
    ):
        assert f"error: {path}" in err
    assert "errors\n" in err.splitlines()[0] + "\n"


def test_validate_warnings_and_strict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shadowed = {
        "endpoints": {"a": "https://a.example", "b": "https://b.example"},
        "routes": [
            {"name": "wide", "priority": 5, "match": {"origin": "deck"}, "target": "a"},
            {"name": "narrow", "match": {"origin": "deck", "application": "x"}, "target": "b"},
            {"name": "risky", "match": {"application": {"regex": "(a+)+"}}, "target": "b"},
            {"name": "main", "default": True, "target": "a"},
        ],
    }
    path = write(tmp_path, shadowed)
    code, out, err = run(capsys, "validate", path)
    assert code == EXIT_OK
    assert "2 warnings" in out
    assert "warning: routes[1]: rule 'narrow' can never win" in err
    assert "warning: routes[2].match.application.regex" in err
    assert run(capsys, "validate", "--strict", path)[0] == EXIT_INVALID
    code, out, _ = run(capsys, "validate", "--json", path)
    report = json.loads(out)
    assert (code, report["valid"], len(report["warnings"])) == (EXIT_OK, True, 2)
    assert {w["path"] for w in report["warnings"]} == {
        "routes[1]",
        "routes[2].match.application.regex",
    }


def test_validate_json_on_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--json", write(tmp_path, {"routes": []}))
    report = json.loads(out)
    assert (code, report["valid"]) == (EXIT_INVALID, False)
    assert report["errors"] == [
        {"path": "routes", "message": "no default route: add one route with 'default: true'"}
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "cannot read file"),
        ("routes.ini", "x", "unknown file type"),
        ("routes.json", "{not json", "syntax error"),
    ],
)
def test_unreadable_files_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    for command in ("validate", "explain", "dump", "simulate"):
        code, _, err = run(capsys, command, str(path))
        assert code == EXIT_INVALID, command
        assert message in err


# -- explain -------------------------------------------------------------------------------


def test_explain_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "explain", write(tmp_path, CONFIG), "--origin", "deck", "--application", "keel"
    )
    assert (code, err) == (EXIT_OK, "")
    lines = out.splitlines()
    assert lines[0] == "Decision"
    assert lines[1].split() == ["endpoint", "ui", "https://ui.example.net"]
    assert lines[2].split() == ["rule", "ui", "(priority", "10)"]
    assert "Criteria" in lines
    rules = out[out.index("Rules, in the order tried") :].splitlines()
    assert rules[1].split() == ["RULE", "PRIORITY", "RESULT"]
    assert rules[2].split()[:3] == ["*", "ui", "10"]
    assert rules[3].split()[:3] == ["-", "tenants", "5"]
    assert rules[-2].split()[:3] == ["-", "main", "default"]
    assert "\x1b[" not in out  # not a terminal: no colour


def test_explain_json_headers_and_attributes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, CONFIG)
    code, out, _ = run(capsys, "explain", path, "--json", "--header", "X-Tenant: green")
    decision = json.loads(out)
    assert (code, decision["rule"], decision["endpoint"]["id"]) == (EXIT_OK, "tenants", "ro-3")
    assert decision["criteria"] == {"attributes": {"x-tenant": "green"}}
    code, out, _ = run(capsys, "explain", path, "--json", "--attr", "X-Tenant=blue")
    assert json.loads(out)["rule"] == "tenants"
    # Explicit options win over headers.
    code, out, _ = run(
        capsys,
        "explain",
        path,
        "--json",
        "--header",
        "X-Spinnaker-User-Origin: deck",
        "--origin",
        "api",
        "--user",
        "alice",
    )
    decision = json.loads(out)
    assert decision["criteria"] == {"authenticated_user": "alice", "origin": "api"}
    assert (decision["rule"], decision["key"], decision["key_source"]) == (
        "main",
        "alice",
        "authenticated_user",
    )


def test_explain_user_header_needs_trust(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, CONFIG)
    code, out, err = run(capsys, "explain", path, "--json", "--header", "X-SPINNAKER-USER: bob")
    assert json.loads(out)["key"] is None
    assert "X-SPINNAKER-USER ignored" in err
    code, out, err = run(
        capsys,
        "explain",
        path,
        "--json",
        "--header",
        "X-SPINNAKER-USER: bob",
        "--trust-user-header",
    )
    assert (code, json.loads(out)["key"], err) == (EXIT_OK, "bob", "")


def test_explain_gate_origin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CONFIG)
    code, out, _ = run(
        capsys, "explain", path, "--json", "--gate-origin", "--header", "X-RateLimit-App: DECK"
    )
    assert (code, json.loads(out)["rule"]) == (EXIT_OK, "ui")


def test_explain_with_a_replica_down_shows_the_failover(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, CONFIG)
    _, out, _ = run(capsys, "explain", path, "--json", "--user", "alice")
    first = json.loads(out)["endpoint"]["id"]
    code, out, _ = run(capsys, "explain", path, "--user", "alice", "--down", first)
    assert code == EXIT_OK
    assert f"failover  first choice {first} is down" in out
    assert f"skipped   {first}: down (manual: --down)" in out
    _, out, _ = run(capsys, "explain", path, "--json", "--user", "alice", "--down", first)
    decision = json.loads(out)
    assert decision["failover"] is True
    assert decision["endpoint"]["id"] != first


def test_explain_no_endpoint_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain", write(tmp_path, CONFIG), "--application", "strict")
    assert (code, out) == (EXIT_NO_ENDPOINT, "")
    assert "no routing key" in err


@pytest.mark.parametrize(
    "extra",
    [["--attr", "novalue"], ["--header", "no colon"], ["--down", "nope"], ["--bogus"]],
)
def test_explain_usage_errors_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    code, out, err = run(capsys, "explain", write(tmp_path, CONFIG), *extra)
    assert (code, out) == (EXIT_USAGE, "")
    assert "error" in err


def test_odd_values_are_escaped_in_the_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "explain", write(tmp_path, CONFIG), "--application", "a\x1b[31mred\nx"
    )
    assert code == EXIT_OK
    assert "\x1b" not in out
    assert "a\\x1b[31mred\\nx" in out


# -- dump ----------------------------------------------------------------------------------


def test_dump_is_canonical_and_loads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, CONFIG)
    code, out, _ = run(capsys, "dump", path)
    assert code == EXIT_OK
    dumped = yaml.safe_load(out)
    assert dumped == config_to_dict(load_config(path))
    assert config_to_dict(load_config(dumped)) == dumped
    code, out, _ = run(capsys, "dump", "--json", path)
    assert json.loads(out) == dumped


def test_dump_falls_back_to_json_without_pyyaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now raises ImportError
    code, out, _ = run(capsys, "dump", write(tmp_path, CONFIG))
    assert (code, json.loads(out)["version"]) == (EXIT_OK, 1)
    code, _, err = run(capsys, "validate", write(tmp_path, CONFIG, "routes.yaml"))
    assert code == 4
    assert "pip install 'selectors-lib[yaml]'" in err


# -- simulate ------------------------------------------------------------------------------


def test_simulate_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, CONFIG)
    code, out, _ = run(capsys, "simulate", path, "--keys", "4000", "--json")
    report = json.loads(out)
    assert (code, report["rule"], report["keys"]) == (EXIT_OK, "main", 4000)
    replicas = {r["id"]: r for r in report["replicas"]}
    assert sum(r["keys"] for r in replicas.values()) == 4000
    assert replicas["ro-3"]["expected"] == 0.5  # weight 2 of 4
    assert 0.4 < replicas["ro-3"]["share"] < 0.6
    changes = [(m["change"], m["endpoint"]) for m in report["movement"]]
    assert changes == [
        ("add", "new-0"),
        ("remove", "ro-1"),
        ("remove", "ro-2"),
        ("remove", "ro-3"),
        ("down", "ro-1"),
        ("down", "ro-2"),
        ("down", "ro-3"),
    ]
    for move in report["movement"][1:]:
        # The default algorithm moves only the keys of the replica that left.
        assert move["moved"] == move["ideal"] == replicas[move["endpoint"]]["keys"]
    add = report["movement"][0]
    assert 0 < add["moved"] < 2 * add["ideal"]


def test_simulate_shows_extra_movement_of_jump(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "endpoints": {f"r{i}": f"https://r{i}.example" for i in range(4)},
        "routes": [
            {
                "name": "main",
                "default": True,
                "target": {"endpoints": [f"r{i}" for i in range(4)], "algorithm": "jump"},
            }
        ],
    }
    path = write(tmp_path, config)
    _, out, _ = run(capsys, "simulate", path, "--keys", "2000", "--json")
    moves = {(m["change"], m["endpoint"]): m for m in json.loads(out)["movement"]}
    # Jump hashing only handles removing the last host gracefully.
    assert moves[("remove", "r0")]["moved"] > moves[("remove", "r0")]["ideal"]
    assert moves[("remove", "r3")]["moved"] == moves[("remove", "r3")]["ideal"]
    # Marking down goes through the failover order: minimal whatever the algorithm.
    assert moves[("down", "r0")]["moved"] == moves[("down", "r0")]["ideal"]
    code, out, _ = run(capsys, "simulate", path, "--keys", "2000")
    assert code == EXIT_OK
    assert "more than needed" in out.splitlines()[out.splitlines().index("Keys that move") + 3]


def test_simulate_text_histogram(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "simulate", write(tmp_path, CONFIG), "--keys", "1000", "--width", "10"
    )
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == "Rule main: 1000 keys over 3 replicas (slots)"
    assert lines[1].split() == ["REPLICA", "WEIGHT", "KEYS", "SHARE", "EXPECTED"]
    bars = {line.split()[0]: line.split()[-1] for line in lines[2:5]}
    assert bars["ro-3"] == "#" * 10  # the biggest share gets the full width
    assert 3 <= len(bars["ro-1"]) <= 7


def test_simulate_single_rule_pool_and_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, CONFIG)
    code, out, _ = run(capsys, "simulate", path, "--rule", "ui", "--keys", "10", "--json")
    report = json.loads(out)
    assert report["replicas"] == [
        {"id": "ui", "weight": 1, "keys": 10, "share": 1.0, "expected": 1.0}
    ]
    assert [m["change"] for m in report["movement"]] == ["add"]
    code, _, err = run(capsys, "simulate", path, "--rule", "nope")
    assert code == EXIT_USAGE
    assert "no rule named 'nope'" in err
    for keys in ("0", "x", "2000000"):
        assert run(capsys, "simulate", path, "--keys", keys)[0] == EXIT_USAGE


# -- demo, convert -------------------------------------------------------------------------


def test_demo(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo")
    assert code == EXIT_OK
    assert out.startswith("selectors_lib demo:")
    assert "ejected" in out


def test_convert_orca_gate_and_base_urls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    examples = ROOT / "src/selectors_lib/spinnaker/examples"
    for argv in (
        ["--orca", str(examples / "orca.yml")],
        ["--orca", str(examples / "orca.yml"), "--role", "writeonly"],
        ["--gate", str(examples / "gate.yml")],
    ):
        code, out, _ = run(capsys, "convert", *argv)
        assert code == EXIT_OK, argv
        load_config(yaml.safe_load(out))  # a valid native configuration
    entries = [
        {
            "baseUrl": "https://cd-deck.example.com",
            "priority": 5,
            "config": {"selectorClass": "ByOriginServiceSelector", "origin": "deck"},
        },
        {"baseUrl": "https://cd.example.com"},
    ]
    code, out, _ = run(capsys, "convert", "--base-urls", "--json", write(tmp_path, entries))
    native = json.loads(out)
    assert code == EXIT_OK
    assert sorted(native["endpoints"].values()) == [
        "https://cd-deck.example.com",
        "https://cd.example.com",
    ]
    code, out, err = run(capsys, "convert", "--orca", write(tmp_path, ["not", "a", "mapping"]))
    assert (code, out) == (EXIT_INVALID, "")
    assert "expected a mapping" in err
    assert run(capsys, "convert", str(examples / "orca.yml"))[0] == EXIT_USAGE


# -- the command line itself ---------------------------------------------------------------


def subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("argv", [["--help"], *([c, "--help"] for c in subcommands())])
def test_help_everywhere(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, _ = run(capsys, *argv)
    assert code == EXIT_OK
    assert out.startswith("usage: selectors-lib")
    assert "exit codes:" in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert (code, out) == (EXIT_USAGE, "")
    assert "usage:" in err


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("no_color", "flag", "coloured"),
    [
        (None, [], True),
        ("1", [], False),
        ("", [], True),  # NO_COLOR only counts when non-empty (no-color.org)
        ("1", ["--color", "always"], True),
        (None, ["--color", "never"], False),
    ],
)
def test_colour_on_a_terminal_unless_no_color(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_color: str | None,
    flag: list[str],
    coloured: bool,
) -> None:
    path = write(tmp_path, CONFIG)
    monkeypatch.delenv("TERM", raising=False)
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    tty = FakeTTY()
    monkeypatch.setattr("sys.stdout", tty)
    assert main(["validate", path, *flag]) == EXIT_OK
    assert ("\x1b[32mvalid\x1b[0m" in tty.getvalue()) is coloured
