"""The WebSocket endpoints with OpenMux's own client (openmux.aio.wsclient,
`connect(..., ws_client="builtin")`, what `vroom term` uses) against the
websockets server: the whole conformance suite runs over it too."""

from __future__ import annotations

from typing import Any

from .endpoints import WsEndpoint, WssEndpoint


class WsBuiltinEndpoint(WsEndpoint):
    name = "ws-builtin-client"

    def extra_client_options(self) -> dict[str, Any]:
        return {**super().extra_client_options(), "ws_client": "builtin"}


class WssBuiltinEndpoint(WssEndpoint):
    name = "wss-builtin-client"

    def extra_client_options(self) -> dict[str, Any]:
        return {**super().extra_client_options(), "ws_client": "builtin"}


ENDPOINTS = [WsBuiltinEndpoint, WssBuiltinEndpoint]
