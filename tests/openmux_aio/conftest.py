"""The transport registry of the conformance suite.

`TRANSPORTS` maps a name to an `Endpoint` class (see endpoints.py); every test
taking the `endpoint_cls` fixture runs once per entry. To add a transport,
write an `Endpoint` subclass in your own module and add it in `_register()`.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import pytest

from .endpoints import Endpoint, StdioEndpoint, TcpEndpoint, TlsEndpoint, WsEndpoint, WssEndpoint

# vterm_support (tests/vroomd_terminal): server_frame, for test_ws_keystroke_frames.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "vroomd_terminal"))

TRANSPORTS: dict[str, type[Endpoint]] = {}


def _register() -> None:
    for cls in (TcpEndpoint, TlsEndpoint, WsEndpoint, WssEndpoint, StdioEndpoint):
        TRANSPORTS[cls.name] = cls
    # Transports written elsewhere: a module exposing ENDPOINTS = [Endpoint subclasses].
    for module in ("endpoint_quic", "endpoint_webrtc", "endpoint_wsclient"):
        try:
            loaded = importlib.import_module(f"{__package__}.{module}")
        except ImportError as exc:
            if exc.name and exc.name.endswith(module):
                continue
            raise
        for cls in loaded.ENDPOINTS:
            TRANSPORTS[cls.name] = cls


_register()


@pytest.fixture(params=sorted(TRANSPORTS))
def endpoint_cls(request: pytest.FixtureRequest) -> type[Endpoint]:
    return TRANSPORTS[request.param]


@pytest.fixture(autouse=True)
def _openmux_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="openmux")
