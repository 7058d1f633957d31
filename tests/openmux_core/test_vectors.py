"""Every golden vector of tests/vectors/openmux/ through the real core."""

from __future__ import annotations

from typing import Any

import pytest
from openmux import MAGIC

from . import vectorgen
from .vectors import VECTOR_DIR, load, run_frame, run_session


def test_vector_files_match_generator() -> None:
    """The committed JSON is what vectorgen.py writes (edit the generator, rerun it)."""
    built = vectorgen.build()
    on_disk = {p.name for p in VECTOR_DIR.glob("*.json")}
    assert on_disk == set(built)
    for name, text in built.items():
        assert (VECTOR_DIR / name).read_text() == text, f"{name} is stale: run vectorgen.py"


def test_every_rule_has_vectors() -> None:
    names = {name.split(":")[1] for name, _ in load("session") + load("frame")}
    assert len(names) > 100
    assert {"upstream-ping-ts-1000", "upstream-pong-echo-1000-recv-500", "ping-timeout"} <= names


@pytest.mark.parametrize(
    ("name", "vector"), load("magic"), ids=lambda x: x if isinstance(x, str) else ""
)
def test_magic(name: str, vector: dict[str, Any]) -> None:
    assert bytes.fromhex(vector["hex"]) == MAGIC


@pytest.mark.parametrize(
    ("name", "vector"), load("frame"), ids=lambda x: x if isinstance(x, str) else ""
)
def test_frame_vector(name: str, vector: dict[str, Any]) -> None:
    run_frame(vector)


@pytest.mark.parametrize(
    ("name", "vector"), load("session"), ids=lambda x: x if isinstance(x, str) else ""
)
def test_session_vector(name: str, vector: dict[str, Any]) -> None:
    run_session(vector)
