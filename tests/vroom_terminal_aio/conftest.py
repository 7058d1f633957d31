"""The fixtures of tests/vroomd_terminal (a real vroomd on 127.0.0.1), reused:
`vroomd` (module scope, ws:// and tcp://, token auth on), plus `url`, the
same vroomd over each transport."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
_SHARED = _HERE.parent / "vroomd_terminal"
sys.path.insert(0, str(_SHARED))  # vterm_support

_spec = importlib.util.spec_from_file_location("vroomd_terminal_fixtures", _SHARED / "conftest.py")
assert _spec is not None and _spec.loader is not None
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

vroomd = _fixtures.vroomd


@pytest.fixture(params=["ws", "tcp"])
def url(request: pytest.FixtureRequest, vroomd: object) -> str:
    return vroomd.url(request.param)  # type: ignore[attr-defined, no-any-return]
