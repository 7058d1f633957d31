"""The built-in plain-language agent's reader (no browser needed)."""

from __future__ import annotations

import pytest
from vroomd.graphical import GraphicalConfig
from vroomd.graphical.commands import CommandFailed, interpret, json_safe

CONFIG = GraphicalConfig()


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("go to example.com", [("navigate", {"url": "https://example.com"})]),
        ("Please open localhost:8000/app.", [("navigate", {"url": "http://localhost:8000/app"})]),
        ("back", [("back", {})]),
        ("go forward", [("forward", {})]),
        ("reload the page", [("refresh", {})]),
        ("scroll down", [("scroll", {"direction": "down", "amount": 500})]),
        ("scroll up 120px", [("scroll", {"direction": "up", "amount": 120})]),
        ("scroll to the bottom", [("_scroll_to", {"where": "bottom"})]),
        ("take a screenshot", [("screenshot", {})]),
        ("where am I?", [("_info", {})]),
        ("click Sign in", [("_find", {"verb": "click", "target": "Sign in"})]),
        ("click the 'Buy now' button", [("_find", {"verb": "click", "target": "Buy now"})]),
        ("click #submit", [("_find", {"verb": "click", "target": "#submit"})]),
        (
            'type "ada@example.org" into the Email field',
            [("_find", {"verb": "fill", "target": "Email", "text": "ada@example.org"})],
        ),
        ("type hello", [("_keys", {"text": "hello"})]),
        ("press ctrl+a", [("_keys", {"press": "Control+a"})]),
        ("press Enter", [("_keys", {"press": "Enter"})]),
        ("hover over Menu", [("_find", {"verb": "hover", "target": "Menu"})]),
        (
            "wait for Done to disappear",
            [("_find", {"verb": "wait", "target": "Done", "state": "hidden"})],
        ),
        ("select Banana in #fruit", [("select", {"selector": "#fruit", "values": ["Banana"]})]),
        (
            "go to example.com then click More; scroll down",
            [
                ("navigate", {"url": "https://example.com"}),
                ("_find", {"verb": "click", "target": "More"}),
                ("scroll", {"direction": "down", "amount": 500}),
            ],
        ),
    ],
)
def test_understood(text: str, steps: list[tuple[str, dict[str, object]]]) -> None:
    assert interpret(text, CONFIG) == steps


@pytest.mark.parametrize("text", ["sing a song", "", "   ", "then then"])
def test_not_understood(text: str) -> None:
    with pytest.raises(CommandFailed) as info:
        interpret(text, CONFIG)
    assert info.value.code == 400
    assert "I understand" in info.value.text


def test_the_url_rule_applies() -> None:
    with pytest.raises(CommandFailed) as info:
        interpret("go to file:///etc/passwd", CONFIG)
    assert info.value.code == 403
    allowed = GraphicalConfig(allowed_schemes=("http", "https", "file"))
    assert interpret("open file:///tmp/x.html", allowed) == [
        ("navigate", {"url": "file:///tmp/x.html"})
    ]


def test_json_safe() -> None:
    import datetime

    value = {"n": float("nan"), "i": float("inf"), "d": datetime.date(2026, 1, 2), 1: (1, 2)}
    assert json_safe(value) == {"n": "nan", "i": "inf", "d": "2026-01-02", "1": [1, 2]}
    deep: object = 0
    for _ in range(40):
        deep = [deep]
    flat = json_safe(deep)
    depth = 0
    while isinstance(flat, list):
        flat, depth = flat[0], depth + 1
    assert depth == 30 and flat == "…"
