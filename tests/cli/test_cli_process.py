"""The command as users run it: real processes, and the examples of docs/cli.md."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from selectors_lib.cli import main

ROOT = Path(__file__).resolve().parents[2]
ROUTES = "docs/examples/cli_routes.yaml"
CONSOLE = re.compile(r"^```console\n(.*?)^```", re.S | re.M)
STATUS = re.compile(r"#\s*exit status (\d+)\s*$")


def run_process(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "selectors_lib", *argv],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_python_m_selectors_lib_validate_and_explain() -> None:
    ok = run_process("validate", ROUTES, NO_COLOR="1")
    assert (ok.returncode, ok.stdout) == (
        0,
        f"{ROUTES}: valid (4 routes, 4 endpoints, 1 warning)\n",
    )
    assert "warning: routes[1]" in ok.stderr
    explained = run_process("explain", ROUTES, "--origin", "Deck", "--json")
    assert explained.returncode == 0
    assert json.loads(explained.stdout)["endpoint"]["id"] == "ui"


def test_process_exit_codes_and_streams(tmp_path: Path) -> None:
    broken = run_process("validate", "docs/examples/cli_broken.yaml")
    assert (broken.returncode, broken.stdout) == (1, "")
    assert broken.stderr.count("error: ") == 5
    usage = run_process("explain", ROUTES, "--attr", "nonsense")
    assert (usage.returncode, usage.stdout) == (2, "")
    assert "--attr must look like NAME=VALUE" in usage.stderr
    nothing = run_process()
    assert (nothing.returncode, nothing.stdout) == (2, "")
    # Without a terminal there is no colour, whatever NO_COLOR says.
    plain = run_process("simulate", ROUTES, "--keys", "100")
    assert plain.returncode == 0
    assert "\x1b" not in plain.stdout


def test_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # Far more output than a pipe buffers, so writing hits the closed pipe.
    big = {
        "endpoints": {"a": "https://a.example.net"},
        "routes": [
            *(
                {"name": f"rule-{i}", "match": {"application": f"app-{i}"}, "target": "a"}
                for i in range(1000)
            ),
            {"name": "main", "default": True, "target": "a"},
        ],
    }
    path = tmp_path / "big.json"
    path.write_text(json.dumps(big))
    process = subprocess.Popen(
        [sys.executable, "-m", "selectors_lib", "dump", str(path), "--json"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.read(10)
    process.stdout.close()
    error = process.stderr.read()
    process.stderr.close()
    assert process.wait(60) == 0
    assert b"Traceback" not in error


@pytest.mark.skipif(shutil.which("selectors-lib") is None, reason="console script not installed")
def test_console_script() -> None:
    script = shutil.which("selectors-lib")
    assert script is not None
    result = subprocess.run(
        [script, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout.split()[0]) == (0, "selectors-lib")


def console_examples() -> list[object]:
    page = (ROOT / "docs/cli.md").read_text("utf-8")
    found = []
    for block in CONSOLE.findall(page):
        lines = block.splitlines()
        starts = [i for i, line in enumerate(lines) if line.startswith("$ ")]
        for n, start in enumerate(starts):
            end = starts[n + 1] if n + 1 < len(starts) else len(lines)
            command = lines[start][2:]
            shown = "\n".join(lines[start + 1 : end]) + "\n"
            found.append(pytest.param(command, shown, id=command[:60]))
    return found


@pytest.mark.parametrize(("command", "shown"), console_examples())
def test_docs_console_examples(
    command: str,
    shown: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("NO_COLOR", raising=False)
    status = STATUS.search(command)
    argv = shlex.split(command, comments=True)
    assert argv[0] == "selectors-lib"
    code = main(argv[1:])
    captured = capsys.readouterr()
    # On a terminal the notes and warnings (stderr) appear before the result.
    output = captured.err + captured.out
    assert code == (int(status.group(1)) if status else 0)
    if shown.endswith("...\n"):
        assert output.startswith(shown[: -len("...\n")])
    else:
        assert output == shown
