"""Fixtures: a real `vroomd` process on 127.0.0.1 with its own state dir
(`vroomd` itself lives in vterm_support, shared with other folders)."""

from __future__ import annotations

from pathlib import Path

import pytest
import vterm_support

vroomd = vterm_support.vroomd


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"
