"""The fixtures of tests/vroomd_terminal (a real vroomd on 127.0.0.1), reused:
`vroomd` (module scope, ws:// and tcp://, token auth on), plus `url`, the
same vroomd over each transport."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "vroomd_terminal"))
vroomd = importlib.import_module("vterm_support").vroomd


@pytest.fixture(params=["ws", "tcp"])
def url(request: pytest.FixtureRequest, vroomd: object) -> str:
    return vroomd.url(request.param)  # type: ignore[attr-defined, no-any-return]
