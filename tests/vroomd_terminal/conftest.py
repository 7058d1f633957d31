"""Fixtures: a real `vroomd` process on 127.0.0.1 with its own state dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from vterm_support import VroomdProcess


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture(scope="module")
def vroomd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VroomdProcess]:
    """vroomd on ws:// and tcp:// (ports chosen by the kernel), token auth on.
    Its own environment holds a secret that must never reach a session."""
    env = dict(os.environ, VROOMD_TEST_SECRET="leaked")
    proc = VroomdProcess(
        ["--listen", "ws://127.0.0.1:0", "--listen", "tcp://127.0.0.1:0"],
        tmp_path_factory.mktemp("vroomd") / "state",
        env,
    )
    proc.wait_for("ready; connect with")
    yield proc
    proc.stop()
