"""Coordinate scaling (client <-> agent viewport) and the House URL rule."""

from __future__ import annotations

import pytest
from vroom_graphical import (
    ProtocolError,
    Size,
    Viewport,
    check_url,
    container_to_agent,
    delta_to_agent,
    fit,
    to_agent,
    to_client,
)
from vroom_graphical.errors import ErrorCode

AGENT = Viewport(1280, 720)


def test_spec_formula() -> None:
    # agent_x = client_x / client_width * agent_width
    assert to_agent(320, 180, Size(640, 360), AGENT) == (640, 360)
    assert to_agent(0, 0, Size(640, 360), AGENT) == (0, 0)
    assert to_agent(100.7, 50.2, Size(1280, 720), AGENT) == (100, 50)


def test_edges_clamp_into_the_viewport() -> None:
    assert to_agent(640, 360, Size(640, 360), AGENT) == (1279, 719)
    assert to_agent(-5, 9999, Size(640, 360), AGENT) == (0, 719)
    assert to_agent(float("nan"), float("inf"), Size(640, 360), AGENT) == (0, 0)


def test_round_trip_for_cursor() -> None:
    assert to_client(640, 360, AGENT, Size(320, 180)) == (160.0, 90.0)


def test_deltas() -> None:
    assert delta_to_agent(10, -10, Size(640, 360), AGENT) == (20, -20)
    assert delta_to_agent(1e9, -1e9, Size(1, 1), AGENT) == (32767, -32768)


def test_letterbox() -> None:
    box = fit(AGENT, Size(1280, 1000))
    assert (box.x, box.y, box.width, box.height) == (0, 140, 1280, 720)
    assert container_to_agent(640, 140, AGENT, Size(1280, 1000)) == (640, 0)
    assert container_to_agent(640, 10, AGENT, Size(1280, 1000)) == (640, 0)  # in the bar


def test_bad_sizes() -> None:
    with pytest.raises(ValueError, match="client size"):
        to_agent(1, 1, Size(0, 10), AGENT)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/x", "https://example.com/x"),
        ("HTTP://EXAMPLE.COM", "HTTP://EXAMPLE.COM"),
        ("example.com/path", "https://example.com/path"),
        ("localhost:8080/app", "http://localhost:8080/app"),
        ("127.0.0.1:3000", "http://127.0.0.1:3000"),
        ("  https://a.b  ", "https://a.b"),
    ],
)
def test_allowed_urls(url: str, expected: str) -> None:
    assert check_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "chrome://settings",
        "javascript:alert(1)",
        "data:text/html,x",
        "about:blank",
        "view-source:https://a",
    ],
)
def test_refused_schemes(url: str) -> None:
    with pytest.raises(ProtocolError, match="not allowed") as info:
        check_url(url)
    assert info.value.code == ErrorCode.FORBIDDEN


def test_configured_schemes() -> None:
    assert check_url("file:///tmp/x", ("http", "https", "file")) == "file:///tmp/x"
    with pytest.raises(ProtocolError) as info:
        check_url("   ")
    assert info.value.code == ErrorCode.BAD_MESSAGE
