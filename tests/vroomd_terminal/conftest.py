"""Fixtures: a real `vroomd` process on 127.0.0.1 with its own state dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from vterm_support import VroomdProcess


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def vroomd(state_dir: Path) -> Iterator[VroomdProcess]:
    """vroomd on ws:// and tcp:// (ports chosen by the kernel), token auth on."""
    proc = VroomdProcess(
        ["--listen", "ws://127.0.0.1:0", "--listen", "tcp://127.0.0.1:0"], state_dir
    )
    proc.wait_for("ready; connect with")
    yield proc
    proc.stop()
