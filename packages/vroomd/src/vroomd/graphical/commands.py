"""COMMAND actions on the agent's page, and the built-in plain-language agent.

`run_command()` carries out one COMMAND (already checked by the protocol
package: mode, arguments, `evaluate` permission, URL scheme) and returns its
`Outcome`, which becomes the COMMAND's one final NOTIFICATION. It never
raises for what the page does (a selector that matches nothing, a timeout, a
navigation error): those are error outcomes with a code.

`natural` goes to `interpret()`, a deliberately small rule-based reader of
plain-language commands ("go to example.com then click Sign in") that stands
in for the voice agent until that work replaces it. It only ever calls the
same actions a client could send, under the same rules (URL schemes; never
`evaluate`).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vroom_graphical import ErrorCode, ProtocolError, check_url

if TYPE_CHECKING:
    from .config import GraphicalConfig
    from .page import Screen

log = logging.getLogger("vroomd.graphical")

MAX_RESULT = 1 << 20
"""Largest evaluate result (encoded as JSON) sent back in a NOTIFICATION."""
MAX_TYPED = 200
"""Longer `type` texts are inserted at once instead of typed key by key."""
SCROLL_DELTA = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    text: str
    data: Any = None
    code: int | None = None


class CommandFailed(Exception):
    def __init__(self, text: str, code: int = ErrorCode.INTERNAL) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


def command_timeout(args: Mapping[str, Any], config: GraphicalConfig) -> float:
    """Seconds: the COMMAND's `timeout` (ms) if given, within the server's ceiling."""
    value = args.get("timeout")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return min(float(value) / 1000, config.max_command_timeout)
    return config.command_timeout


async def run_command(
    screen: Screen,
    action: str,
    args: Mapping[str, Any],
    config: GraphicalConfig,
    *,
    internal: bool = False,
) -> Outcome:
    handler = _ACTIONS.get(action) or (_INTERNAL.get(action) if internal else None)
    if handler is None:
        return Outcome(False, f"{action}: not supported by this server", code=ErrorCode.UNKNOWN)
    timeout = command_timeout(args, config)
    try:
        page = await screen.ready()
        return await handler(screen, page, args, timeout * 1000, config)
    except CommandFailed as exc:
        return Outcome(False, f"{action}: {exc.text}", code=exc.code)
    except Exception as exc:
        return _failure(action, exc)


def _failure(action: str, exc: BaseException) -> Outcome:
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    message = _first_line(exc)
    if isinstance(exc, PlaywrightTimeout):
        return Outcome(False, f"{action}: timed out: {message}", code=ErrorCode.TIMEOUT)
    if type(exc).__name__ == "ScreenClosed":
        return Outcome(False, f"{action}: {message}", code=ErrorCode.INTERNAL)
    return Outcome(False, f"{action}: {message}", code=ErrorCode.INTERNAL)


# ------------------------------------------------------------------ actions


async def _click(screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any) -> Outcome:
    selector = args["selector"]
    await page.click(selector, timeout=ms)
    return Outcome(True, f"clicked {selector}")


async def _type(screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any) -> Outcome:
    selector, text = args["selector"], args["text"]
    locator = page.locator(selector).first
    if len(text) <= MAX_TYPED:
        await locator.press_sequentially(text, timeout=ms)
    else:
        await locator.focus(timeout=ms)
        await page.keyboard.insert_text(text)
    return Outcome(True, f"typed {len(text)} characters into {selector}")


async def _scroll(
    screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any
) -> Outcome:
    direction = str(args["direction"]).lower()
    if direction not in SCROLL_DELTA:
        raise CommandFailed(
            f"direction must be up, down, left or right, not {direction!r}", ErrorCode.BAD_MESSAGE
        )
    amount = args["amount"]
    if not isinstance(amount, int | float) or isinstance(amount, bool) or not math.isfinite(amount):
        raise CommandFailed("amount must be a number of pixels", ErrorCode.BAD_MESSAGE)
    amount = max(-100_000, min(100_000, round(amount)))
    ux, uy = SCROLL_DELTA[direction]
    width, height = screen.viewport
    await screen.cdp.send(
        "Input.dispatchMouseEvent",
        {
            "type": "mouseWheel",
            "x": width // 2,
            "y": height // 2,
            "deltaX": ux * amount,
            "deltaY": uy * amount,
        },
    )
    return Outcome(True, f"scrolled {direction} {amount}px")


async def _navigate(
    screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any
) -> Outcome:
    url = args["url"]
    with screen.busy("browsing"):
        response = await page.goto(url, timeout=ms)
    status = f" (HTTP {response.status})" if response is not None else ""
    return Outcome(True, f"loaded {page.url}{status}")


async def _history(screen: Screen, page: Any, step: int, ms: float) -> Outcome:
    history = await screen.cdp.send("Page.getNavigationHistory")
    index, count = int(history["currentIndex"]), len(history["entries"])
    if not 0 <= index + step < count:
        where = "back to" if step < 0 else "forward to"
        raise CommandFailed(f"there is no page to go {where}", ErrorCode.WRONG_STATE)
    with screen.busy("browsing"):
        if step < 0:
            await page.go_back(timeout=ms)
        else:
            await page.go_forward(timeout=ms)
    return Outcome(True, f"now at {page.url}")


async def _back(screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any) -> Outcome:
    return await _history(screen, page, -1, ms)


async def _forward(
    screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any
) -> Outcome:
    return await _history(screen, page, 1, ms)


async def _refresh(
    screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any
) -> Outcome:
    with screen.busy("browsing"):
        await page.reload(timeout=ms)
    return Outcome(True, f"reloaded {page.url}")


async def _screenshot(
    screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any
) -> Outcome:
    full = args.get("fullPage") is True
    png = await page.screenshot(type="png", full_page=full, timeout=ms)
    return Outcome(True, f"screenshot, {len(png)} bytes", data={"mime": "image/png", "bytes": png})


async def _select(
    screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any
) -> Outcome:
    selector, values = args["selector"], list(args["values"])
    chosen = await page.select_option(selector, values, timeout=ms)
    return Outcome(True, f"selected {', '.join(chosen) or 'nothing'} in {selector}", data=chosen)


async def _hover(screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any) -> Outcome:
    selector = args["selector"]
    await page.hover(selector, timeout=ms)
    return Outcome(True, f"hovering {selector}")


async def _wait(screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any) -> Outcome:
    selector, state = args["selector"], args["state"]
    await page.wait_for_selector(selector, state=state, timeout=ms)
    return Outcome(True, f"{selector} is {state}")


async def _evaluate(
    screen: Screen, page: Any, args: Mapping[str, Any], ms: float, config: GraphicalConfig
) -> Outcome:
    if not config.allow_evaluate:  # the protocol layer refuses it first; never rely on one check
        raise CommandFailed("evaluate is not allowed on this server", ErrorCode.FORBIDDEN)
    result = json_safe(await page.evaluate(args["expression"]))
    size = len(json.dumps(result, ensure_ascii=False).encode())
    if size > MAX_RESULT:
        raise CommandFailed(
            f"the result is {size} bytes as JSON, more than {MAX_RESULT}", ErrorCode.TOO_LARGE
        )
    return Outcome(True, "evaluated", data=result)


async def _natural(
    screen: Screen, page: Any, args: Mapping[str, Any], ms: float, config: GraphicalConfig
) -> Outcome:
    with screen.busy("thinking"):
        steps = interpret(str(args["text"]), config)
    done: list[str] = []
    data: Any = None
    for action, step_args in steps:
        outcome = await run_command(screen, action, step_args, config, internal=True)
        if not outcome.ok:
            prefix = f"after {'; '.join(done)}: " if done else ""
            return Outcome(False, prefix + outcome.text, code=outcome.code)
        done.append(outcome.text)
        if outcome.data is not None:
            data = outcome.data
    return Outcome(True, "; ".join(done), data=data)


async def _keys(screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any) -> Outcome:
    """Internal (natural only): press a key combination, or type at the focus."""
    if "press" in args:
        await page.keyboard.press(args["press"])
        return Outcome(True, f"pressed {args['press']}")
    await page.keyboard.insert_text(args["text"])
    return Outcome(True, f"typed {len(args['text'])} characters")


async def _info(screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any) -> Outcome:
    """Internal (natural only): where the agent is."""
    title = await page.title()
    return Outcome(
        True, f"{title or 'untitled'} — {page.url}", data={"title": title, "url": page.url}
    )


async def _scroll_to(
    screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any
) -> Outcome:
    """Internal (natural only): scroll to the top or bottom."""
    top = args["where"] == "top"
    await page.evaluate(
        "top => window.scrollTo(0, top ? 0 : document.documentElement.scrollHeight)", top
    )
    return Outcome(True, f"scrolled to the {args['where']}")


async def _find(screen: Screen, page: Any, args: Mapping[str, Any], ms: float, _c: Any) -> Outcome:
    """Internal (natural only): act on an element named in plain words."""
    verb, target = args["verb"], args["target"]
    if verb == "wait":  # what we wait for may not be there yet
        state = args.get("state", "visible")
        hint = _SELECTOR_HINT.search(target)
        waited = page.locator(target) if hint else page.get_by_text(target)
        await waited.first.wait_for(state=state, timeout=ms)
        return Outcome(True, f"{target!r} is {state}")
    locator = await _locate(page, target, field=verb == "fill", timeout=ms)
    if verb == "click":
        await locator.click(timeout=ms)
        return Outcome(True, f"clicked {target!r}")
    if verb == "hover":
        await locator.hover(timeout=ms)
        return Outcome(True, f"hovering {target!r}")
    text = args["text"]
    await locator.fill(text, timeout=ms)
    return Outcome(True, f"typed {text!r} into {target!r}")


_ACTIONS: dict[str, Any] = {
    "click": _click,
    "type": _type,
    "scroll": _scroll,
    "navigate": _navigate,
    "back": _back,
    "forward": _forward,
    "refresh": _refresh,
    "screenshot": _screenshot,
    "select": _select,
    "hover": _hover,
    "wait": _wait,
    "evaluate": _evaluate,
    "natural": _natural,
}
_INTERNAL: dict[str, Any] = {
    "_keys": _keys,
    "_info": _info,
    "_scroll_to": _scroll_to,
    "_find": _find,
}


def json_safe(value: Any, depth: int = 0) -> Any:
    """A page's value as the JSON data model: NaN/Infinity and dates as text,
    anything unknown as its text, nesting cut at 30 levels (the wire allows 32)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth >= 30:
        return "…"
    if isinstance(value, _dt.datetime | _dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v, depth + 1) for v in value]
    return str(value)


# ------------------------------------------------------------------ finding elements

_SELECTOR_HINT = re.compile(r"^[#.\[]|^[a-z]+[#.\[:]|^(css|xpath|text|role|id)=|^//")


async def _locate(page: Any, target: str, *, field: bool, timeout: float) -> Any:
    """The element a person means by `target`: a CSS/Playwright selector if it
    looks like one, else (fields) a label, placeholder or textbox name, else
    (anything) a button, a link, then visible text."""
    if _SELECTOR_HINT.search(target):
        return page.locator(target).first
    if field:
        candidates = [
            page.get_by_label(target),
            page.get_by_placeholder(target),
            page.get_by_role("textbox", name=target),
            page.get_by_role("searchbox", name=target),
        ]
    else:
        candidates = [
            page.get_by_role("button", name=target),
            page.get_by_role("link", name=target),
            page.get_by_text(target, exact=True),
            page.get_by_text(target),
        ]
    for locator in candidates:
        try:
            if await locator.count() > 0:
                return locator.first
        except Exception:
            continue
    raise CommandFailed(f"nothing on the page matches {target!r}", ErrorCode.UNKNOWN)


# ------------------------------------------------------------------ plain language

HELP = (
    "I understand: go to <url> · back · forward · reload · scroll up|down [N] · "
    "scroll to the top|bottom · click <text or selector> · type <text> into <field> · "
    "type <text> · press <keys> · hover <text> · wait for <text> · select <option> in "
    "<selector> · take a screenshot · where am I. Join steps with 'then'."
)
_KEY_NAMES = {
    "ctrl": "Control",
    "control": "Control",
    "shift": "Shift",
    "alt": "Alt",
    "option": "Alt",
    "cmd": "Meta",
    "command": "Meta",
    "meta": "Meta",
    "enter": "Enter",
    "return": "Enter",
    "esc": "Escape",
    "escape": "Escape",
    "tab": "Tab",
    "space": "Space",
    "backspace": "Backspace",
    "delete": "Delete",
    "del": "Delete",
    "up": "ArrowUp",
    "down": "ArrowDown",
    "left": "ArrowLeft",
    "right": "ArrowRight",
    "home": "Home",
    "end": "End",
    "pageup": "PageUp",
    "pagedown": "PageDown",
}
_SPLIT = re.compile(r"\s*(?:;|,?\s+then\s+|,?\s+and then\s+)\s*", re.IGNORECASE)
_POLITE = re.compile(r"^(?:please\s+|can you\s+|could you\s+|now\s+)+|[\s.!?]+$", re.IGNORECASE)


_OPENING = "\u201c\u2018"  # typographic quotes, as phones type them
_CLOSING = "\u201d\u2019"


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"`":
        return text[1:-1]
    if len(text) >= 2 and text[0] in _OPENING and text[-1] in _CLOSING:
        return text[1:-1]
    return text


def _keys_name(spec: str) -> str:
    parts = [p for p in re.split(r"\s*\+\s*|\s+", spec.strip()) if p]
    out = []
    for part in parts:
        name = _KEY_NAMES.get(part.lower())
        if name is None:
            name = part if len(part) > 1 else part.lower()
        out.append(name)
    return "+".join(out)


def interpret(text: str, config: GraphicalConfig) -> list[tuple[str, dict[str, Any]]]:
    """Plain language -> the actions to run; CommandFailed(400) if a step is not understood."""
    steps: list[tuple[str, dict[str, Any]]] = []
    for raw in _SPLIT.split(text.strip()):
        step = _POLITE.sub("", raw.strip())
        if not step:
            continue
        parsed = _interpret_step(step, config)
        if parsed is None:
            raise CommandFailed(f"I don't know how to {step!r}. {HELP}", ErrorCode.BAD_MESSAGE)
        steps.append(parsed)
    if not steps:
        raise CommandFailed(f"nothing to do. {HELP}", ErrorCode.BAD_MESSAGE)
    return steps


def _interpret_step(step: str, config: GraphicalConfig) -> tuple[str, dict[str, Any]] | None:
    low = step.lower()
    m = re.fullmatch(
        r"(?:go to|goto|open|navigate to|visit|load|browse to|show me)\s+(.+)", step, re.I
    )
    if m:
        try:
            url = check_url(_unquote(m.group(1)), config.allowed_schemes)
        except ProtocolError as exc:
            raise CommandFailed(exc.reason, exc.code) from None
        return "navigate", {"url": url}
    if re.fullmatch(r"(?:go\s+)?back|previous page", low):
        return "back", {}
    if re.fullmatch(r"(?:go\s+)?forward|next page", low):
        return "forward", {}
    if re.fullmatch(r"(?:reload|refresh)(?:\s+(?:the\s+)?page)?", low):
        return "refresh", {}
    m = re.fullmatch(r"scroll\s+to\s+(?:the\s+)?(top|bottom)(?:\s+of the page)?", low)
    if m:
        return "_scroll_to", {"where": m.group(1)}
    m = re.fullmatch(
        r"scroll(?:\s+(up|down|left|right))?(?:\s+(?:by\s+)?(\d+)\s*(?:px|pixels)?)?"
        r"(?:\s+(a\s+(?:bit|little)|a\s+lot|a\s+page))?",
        low,
    )
    if m:
        amount = int(m.group(2)) if m.group(2) else 500
        if m.group(3):
            amount = {"a lot": 2000, "a page": 600}.get(" ".join(m.group(3).split()), 200)
        return "scroll", {"direction": m.group(1) or "down", "amount": amount}
    if re.fullmatch(r"(?:take\s+a\s+|make\s+a\s+)?screenshot|screenshot\s+(?:it|the page)", low):
        return "screenshot", {}
    if re.fullmatch(r"where am i|what(?:'s| is) (?:the )?(?:page|title|url|page title)", low):
        return "_info", {}
    m = re.fullmatch(
        r"(?:click|tap|press)\s+(?:on\s+)?(?:the\s+)?(.+?)\s+(?:button|link)", step, re.I
    )
    if m:
        return "_find", {"verb": "click", "target": _unquote(m.group(1))}
    m = re.fullmatch(r"press\s+(.+)", step, re.I)
    if m:
        return "_keys", {"press": _keys_name(_unquote(m.group(1)))}
    m = re.fullmatch(r"(?:click|tap)\s+(?:on\s+)?(?:the\s+)?(.+)", step, re.I)
    if m:
        return "_find", {"verb": "click", "target": _unquote(m.group(1))}
    m = re.fullmatch(
        r"(?:type|enter|write|fill in)\s+(.+?)\s+(?:into|in)\s+(?:the\s+)?(.+)", step, re.I
    )
    if m:
        target = _unquote(m.group(2))
        target = re.sub(r"\s+(?:field|box|input)$", "", target, flags=re.I) or target
        return "_find", {"verb": "fill", "target": target, "text": _unquote(m.group(1))}
    m = re.fullmatch(r"(?:type|write)\s+(.+)", step, re.I)
    if m:
        return "_keys", {"text": _unquote(m.group(1))}
    m = re.fullmatch(r"hover\s+(?:over\s+)?(?:the\s+)?(.+)", step, re.I)
    if m:
        return "_find", {"verb": "hover", "target": _unquote(m.group(1))}
    m = re.fullmatch(
        r"wait\s+(?:for|until)\s+(?:the\s+)?(.+?)(?:\s+(?:to\s+)?(?:appears?|is visible|"
        r"be visible)|\s+(?:to\s+)?(disappears?|is hidden|be hidden|goes away))?",
        step,
        re.I,
    )
    if m:
        state = "hidden" if m.group(2) else "visible"
        return "_find", {"verb": "wait", "target": _unquote(m.group(1)), "state": state}
    m = re.fullmatch(r"select\s+(.+?)\s+(?:in|from)\s+(.+)", step, re.I)
    if m:
        return "select", {"selector": _unquote(m.group(2)), "values": [_unquote(m.group(1))]}
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
