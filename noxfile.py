"""Developer sessions: `nox -s tests lint typecheck bench`.

Each session installs the four packages editable into its own virtualenv, so
they also prove that the packages install from their own pyproject.toml.
"""

from __future__ import annotations

import glob

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PACKAGES = [
    "packages/openmux",
    "packages/vroom-terminal",
    "packages/vroom-graphical",
    "packages/vroomd",
]
PROTOCOL_SOURCES = [
    "packages/openmux/src/openmux",
    "packages/vroom-terminal/src/vroom_terminal",
    "packages/vroom-graphical/src/vroom_graphical",
]


def _install(session: nox.Session) -> None:
    for package in PACKAGES:
        session.install("-e", package)
    session.install("-r", "requirements-dev.txt")


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The whole suite with coverage of openmux (fails under 95 %)."""
    _install(session)
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """ruff check + ruff format --check over everything."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the protocol packages, plain mypy on vroomd."""
    _install(session)
    session.install("mypy")
    session.run("mypy", "--strict", *PROTOCOL_SOURCES)
    session.run("mypy", "packages/vroomd/src/vroomd")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Run every benchmark script; each prints `name value unit` lines."""
    _install(session)
    for script in sorted(glob.glob("bench/*.py")):
        if script.endswith("_common.py") or "/_" in script:
            continue
        session.run("python", script)
