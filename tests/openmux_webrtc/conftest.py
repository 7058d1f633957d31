"""Fixtures of the WebRTC binding tests (helpers are in helpers.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest


@pytest.fixture(autouse=True)
async def _no_stray_loop_errors() -> AsyncIterator[None]:
    """An exception escaping an aiortc/pyee callback is only logged by asyncio:
    make it fail the test instead."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield
    loop.set_exception_handler(previous)
    assert not errors, errors
