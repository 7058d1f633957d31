"""Fixtures of the shared-port tests (WebSocket + WebRTC signaling + HTTP on one port)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
async def _no_stray_loop_errors() -> AsyncIterator[None]:
    """An exception escaping a callback (aiortc, a protocol hand-off) is only
    logged by asyncio: make it fail the test instead."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield
    loop.set_exception_handler(previous)
    assert not errors, errors
