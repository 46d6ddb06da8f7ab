"""Every check the project runs: ``nox`` runs tests, typing, lint and docs."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tarfile

import nox

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["tests", "typing", "lint", "docs", "build"]
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


class _QuietUvProbe(logging.Filter):
    """Drop nox's "uv binary not found." notice.

    nox probes for uv even when the backend is set to virtualenv, and says it is
    missing as if something were wrong. The sessions use virtualenv and pip on
    purpose: pip honours the machine's pip configuration (index, constraints),
    and virtualenv finds pyenv's interpreters without downloading any.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "uv binary not found."


logging.getLogger("nox").addFilter(_QuietUvProbe())


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
    """Run every example in docs/ and README.md, then build the site with --strict."""
    session.install("-e", ".[all]", *group("test"), *group("docs"))
    session.run("pytest", "tests/docs", "-q", *session.posargs)
    site = session.create_tmp() + "/site"
    # --strict: a broken link, an unlisted page or an unresolvable API reference fails.
    session.run("mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"})
    mkdocs = os.path.relpath(os.path.join(session.bin, "mkdocs"))
    session.log(f"site built in {os.path.relpath(site)}; preview while editing: {mkdocs} serve")


@nox.session(python="3.11")
def build(session: nox.Session) -> None:
    """Build the sdist and wheel, check them, and run the wheel from a fresh venv."""
    session.install(*group("build"))
    tmp = os.path.abspath(session.create_tmp())
    dist = os.path.join(tmp, "dist")
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", dist)
    artifacts = sorted(os.path.join(dist, name) for name in os.listdir(dist))
    session.run("twine", "check", "--strict", *artifacts)
    (sdist,) = [a for a in artifacts if a.endswith(".tar.gz")]
    (wheel,) = [a for a in artifacts if a.endswith(".whl")]
    with tarfile.open(sdist) as archive:
        top = os.path.commonpath(archive.getnames())
        missing = {"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", "mkdocs.yml"}
        missing -= {os.path.relpath(name, top) for name in archive.getnames()}
    if missing:
        session.error(f"the sdist lacks {sorted(missing)}")
    # A user's install: a fresh venv holding the wheel only, run from outside
    # the checkout, so nothing can come from src/.
    venv = os.path.join(tmp, "venv")
    shutil.rmtree(venv, ignore_errors=True)
    session.run("python", "-m", "venv", venv)
    bin_dir = os.path.join(venv, "Scripts" if sys.platform == "win32" else "bin")
    python = os.path.join(bin_dir, "python")
    session.run(python, "-m", "pip", "install", "-q", f"{wheel}[yaml]", external=True)
    smoke_test = os.path.abspath("tests/packaging/wheel_smoke.py")
    with session.chdir(tmp):
        demo = session.run(
            os.path.join(bin_dir, "selectors-lib"), "demo", external=True, silent=True
        )
        session.run(python, smoke_test, external=True)
    # The demo must read the example the wheel carries.
    header, shown_file = str(demo).splitlines()[:2]
    if "site-packages" not in shown_file:
        session.error(f"the demo did not read the wheel's example: {shown_file.strip()}")
    session.log(f"{header}\n{shown_file}")


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
