"""Every check the project runs: ``nox`` runs tests, typing, lint and docs."""

from __future__ import annotations

import os
import shutil

import nox

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["tests", "typing", "lint", "docs"]
nox.options.error_on_missing_interpreters = True

PYPROJECT = nox.project.load_toml("pyproject.toml")
PYTHONS = ["3.11", "3.12", "3.13"]


def _expose_pyenv_versions() -> None:
    """Let pyenv's shims find every Python the sessions want.

    pyenv's shims run only the versions named in PYENV_VERSION, and the shim that
    started nox has already set it to its own version; add the newest installed
    patch release of each wanted version to it.
    """
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    versions = os.path.join(root, "versions")
    if not (shutil.which("pyenv") and os.path.isdir(versions)):
        return
    installed = os.listdir(versions)
    chosen = [v for v in os.environ.get("PYENV_VERSION", "").split(":") if v]
    for wanted in PYTHONS:
        matches = [
            v for v in installed if v.startswith(wanted + ".") and v[len(wanted) + 1 :].isdigit()
        ]
        if matches:
            chosen.append(max(matches, key=lambda v: int(v.rsplit(".", 1)[1])))
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys(chosen))


_expose_pyenv_versions()


def group(name: str) -> list[str]:
    return list(nox.project.dependency_groups(PYPROJECT, name))


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite (needs redis-server on PATH for the replica-lag tests)."""
    session.install("-e", ".[all]", *group("test"))
    code = session.run("pytest", *session.posargs, success_codes=[0, 5])
    if code == 5:  # pytest: no tests collected, which is never a pass
        session.error("pytest collected no tests")


@nox.session(python="3.11")
def typing(session: nox.Session) -> None:
    """mypy --strict on the package and on tests/typing (intended user code)."""
    session.install("-e", ".[all]", *group("typing"))
    session.run("mypy", "--strict", "src", "tests/typing")


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install(*group("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Run every example in docs/ and README.md, and check internal links."""
    session.install("-e", ".[all]", *group("test"))
    session.run("pytest", "tests/docs", "-q", *session.posargs)


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Benchmarks, side by side with their peers; prints ratios."""
    session.install("-e", ".[all]", *group("bench"))
    quick = ["--quick"] if "--quick" in session.posargs else []
    for script in sorted(os.listdir("bench")):
        if script.startswith("bench_") and script.endswith(".py"):
            session.run("python", f"bench/{script}", *quick)


@nox.session(python="3.11")
def demo(session: nox.Session) -> None:
    """The library's main job: route sample requests through the bundled example."""
    session.install("-e", ".[yaml]")
    session.run("selectors-lib", "demo")
