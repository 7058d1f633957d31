"""Packed VROOM input -> the agent page's input, in arrival order.

Mouse, wheel and touch go to CDP `Input.dispatch*Event` directly rather than
through Playwright's `page.mouse`: Playwright's mouse knows only three buttons
and always sends `clickCount: 1` (no dblclick), and has no touch start/move/
end at all. Keys go 1:1 onto Playwright's `page.keyboard.down/up`, which
knows the DOM key names and their codes, and PASTE onto `insert_text`
(CDP `Input.insertText`).

Ordering: one `InputMapper` per page, fed by one worker, so events reach the
page in the order they arrived. A mouse move is acknowledged by Chromium only
at the next animation frame (~16 ms), so moves are pipelined: sent without
waiting, at most one in flight; while one is in flight newer moves replace
each other (the newest position wins) and the next discrete event (a press,
a key) waits for the move before it. A press carries its own position and
moves there first, so a lost or dropped move never misplaces a click.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from vroom_graphical import (
    KeyDown,
    KeyUp,
    Modifiers,
    MouseDown,
    MouseMove,
    MouseMoveRel,
    MouseUp,
    Scroll,
    TouchEnd,
    TouchMove,
    TouchStart,
)
from vroom_graphical.inputs import InputMessage

log = logging.getLogger("vroomd.graphical")

BUTTON_NAMES = ("left", "middle", "right", "back", "forward")
BUTTON_BITS = (1, 4, 2, 8, 16)  # MouseEvent.buttons
# CDP modifiers bit field: Alt=1, Ctrl=2, Meta/Command=4, Shift=8.
_CDP_MODIFIER = {Modifiers.ALT: 1, Modifiers.CTRL: 2, Modifiers.META: 4, Modifiers.SHIFT: 8}
_MODIFIER_KEYS = {
    Modifiers.SHIFT: "Shift",
    Modifiers.CTRL: "Control",
    Modifiers.ALT: "Alt",
    Modifiers.META: "Meta",
}
_KEY_MODIFIER = {name: bit for bit, name in _MODIFIER_KEYS.items()}
DOUBLE_CLICK_TIME = 0.5
DOUBLE_CLICK_DISTANCE = 4


class InputMapper:
    """The input state of one agent page: pointer, buttons, keys, touches."""

    def __init__(self, page: Any, cdp: Any, viewport: tuple[int, int]) -> None:
        self.page = page
        self.cdp = cdp
        self.width, self.height = viewport
        self.x = 0
        self.y = 0
        self.buttons = 0
        self.modifiers = Modifiers.NONE
        """Modifier keys we pressed on the page (kept in step with the client's)."""
        self.keys: dict[str, str] = {}
        """Keys down on the page: client key -> the name we gave Playwright."""
        self.touches: dict[int, dict[str, float]] = {}
        self._move: asyncio.Future[Any] | None = None
        self._next_move: tuple[int, int] | None = None
        self._last_press: tuple[float, int, int, int, int] = (0.0, -1, 0, 0, 0)
        """(time, button, x, y, clickCount) of the last press, for double clicks."""
        self.on_move: Callable[[], None] | None = None
        """Called whenever a new pointer position is sent to the page (the
        cursor shape follows it). Also from a move's completion callback:
        a coalesced move is sent there, after `handle()` has returned."""
        self.before_paste: Callable[[], Awaitable[None]] | None = None
        """Called before a paste shortcut reaches the page (the owner's clipboard)."""

    def resize(self, width: int, height: int) -> None:
        self.width, self.height = width, height

    # ------------------------------------------------------------ dispatch

    async def handle(self, message: InputMessage) -> None:
        if isinstance(message, MouseMove):
            self._queue_move(message.x, message.y)
        elif isinstance(message, MouseMoveRel):
            # Pointer lock: Chromium derives movementX/Y from successive positions.
            base = self._next_move or (self.x, self.y)
            self._queue_move(base[0] + message.dx, base[1] + message.dy)
        elif isinstance(message, Scroll):
            await self._flush_move()
            await self._mouse("mouseWheel", self.x, self.y, deltaX=message.dx, deltaY=message.dy)
        elif isinstance(message, MouseDown | MouseUp):
            await self._button(message)
        elif isinstance(message, KeyDown | KeyUp):
            await self._flush_move()
            await self._key(message)
        elif isinstance(message, TouchStart | TouchMove | TouchEnd):
            await self._flush_move()
            await self._touch(message)

    async def paste(self, text: str) -> None:
        """PASTE: text inserted at the focus as one input (no key events),
        like an IME commit or a paste."""
        await self._flush_move()
        await self.page.keyboard.insert_text(text)

    async def release_all(self) -> None:
        """Leaving interact (or the session ending): nothing stays pressed."""
        await self._flush_move()
        for index, bit in enumerate(BUTTON_BITS):
            if self.buttons & bit:
                await self._mouse("mouseReleased", self.x, self.y, button=BUTTON_NAMES[index])
                self.buttons &= ~bit
        for name in list(self.keys.values()):
            await self.page.keyboard.up(name)
        self.keys.clear()
        self.modifiers = Modifiers.NONE
        if self.touches:
            self.touches.clear()
            await self.cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})

    # ------------------------------------------------------------ mouse

    def _clamp(self, x: int, y: int) -> tuple[int, int]:
        return min(max(x, 0), self.width - 1), min(max(y, 0), self.height - 1)

    def _queue_move(self, x: int, y: int) -> None:
        self._next_move = self._clamp(x, y)
        if self._move is None:
            self._send_move()

    def _send_move(self) -> None:
        assert self._next_move is not None
        x, y = self._next_move
        self._next_move = None
        self.x, self.y = x, y
        params = self._mouse_params("mouseMoved", x, y)
        self._move = asyncio.ensure_future(self.cdp.send("Input.dispatchMouseEvent", params))
        self._move.add_done_callback(self._move_done)
        self._moved()

    def _move_done(self, future: asyncio.Future[Any]) -> None:
        if future is not self._move:
            return
        self._move = None
        if not future.cancelled() and future.exception() is not None:
            log.debug("mouse move failed: %r", future.exception())
        if self._next_move is not None:
            self._send_move()

    async def _flush_move(self) -> None:
        """Before a discrete event: the moves sent so far have been dispatched."""
        while self._move is not None:
            move = self._move
            try:
                await asyncio.shield(move)
            except Exception:
                pass
            if self._move is move:  # its callback has not run yet
                self._move_done(move)
        self._next_move = None  # superseded by the discrete event's own position

    async def _button(self, message: MouseDown | MouseUp) -> None:
        await self._flush_move()
        x, y = self._clamp(message.x, message.y)
        index = int(message.button)
        name, bit = BUTTON_NAMES[index], BUTTON_BITS[index]
        if (x, y) != (self.x, self.y):
            self.x, self.y = x, y
            await self._mouse("mouseMoved", x, y)
            self._moved()
        if isinstance(message, MouseDown):
            now = time.monotonic()
            at, last_button, lx, ly, count = self._last_press
            same = (
                last_button == index
                and now - at <= DOUBLE_CLICK_TIME
                and abs(x - lx) <= DOUBLE_CLICK_DISTANCE
                and abs(y - ly) <= DOUBLE_CLICK_DISTANCE
            )
            count = count + 1 if same else 1
            self._last_press = (now, index, x, y, count)
            self.buttons |= bit
            await self._mouse("mousePressed", x, y, button=name, clickCount=count)
        else:
            if not self.buttons & bit:
                return  # a release without its press (pressed before interact)
            self.buttons &= ~bit
            count = self._last_press[4] if self._last_press[1] == index else 1
            await self._mouse("mouseReleased", x, y, button=name, clickCount=count)

    def _moved(self) -> None:
        if self.on_move is not None:
            self.on_move()

    def _mouse_params(self, kind: str, x: int, y: int, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {
            "type": kind,
            "x": x,
            "y": y,
            "modifiers": self._cdp_modifiers(),
            "buttons": self.buttons,
        }
        if "button" not in extra and kind != "mouseWheel":
            params["button"] = next(
                (BUTTON_NAMES[i] for i, b in enumerate(BUTTON_BITS) if self.buttons & b), "none"
            )
        params.update(extra)
        return params

    async def _mouse(self, kind: str, x: int, y: int, **extra: Any) -> None:
        await self.cdp.send("Input.dispatchMouseEvent", self._mouse_params(kind, x, y, **extra))

    def _cdp_modifiers(self) -> int:
        return sum(v for bit, v in _CDP_MODIFIER.items() if self.modifiers & bit)

    # ------------------------------------------------------------ keys

    async def _sync_modifiers(self, wanted: Modifiers, key: str) -> None:
        """Press/release modifier keys so the page's state matches the
        client's (a modifier pressed while the client window had no focus,
        or a lost release). The key being pressed is left to the event."""
        keyboard = self.page.keyboard
        for bit, name in _MODIFIER_KEYS.items():
            if name == key:
                continue
            if wanted & bit and not self.modifiers & bit:
                await keyboard.down(name)
                self.modifiers |= bit
                self.keys[name] = name
            elif not wanted & bit and self.modifiers & bit:
                await keyboard.up(name)
                self.modifiers &= ~bit
                self.keys.pop(name, None)

    async def _key(self, message: KeyDown | KeyUp) -> None:
        keyboard = self.page.keyboard
        key = message.key
        await self._sync_modifiers(Modifiers(message.modifiers & 0x0F), key)
        if isinstance(message, KeyDown):
            if self.before_paste is not None and self._is_paste(key):
                await self.before_paste()
            name = self.keys.get(key) or _playwright_key(key, message.code)
            if name is None:
                log.debug("key %r (code %r) has no Playwright name: dropped", key, message.code)
                return
            try:
                await keyboard.down(name)
            except Exception as exc:  # an unknown multi-character name
                if name == key and message.code and message.code != key:
                    name = message.code
                    await keyboard.down(name)
                else:
                    log.debug("key %r refused by Playwright: %s", key, exc)
                    return
            self.keys[key] = name
            bit = _KEY_MODIFIER.get(name)
            if bit is not None:
                self.modifiers |= bit
        else:
            name = self.keys.pop(key, None)
            if name is None:
                return  # released without a press we forwarded
            await keyboard.up(name)
            bit = _KEY_MODIFIER.get(name)
            if bit is not None:
                self.modifiers &= ~bit

    def _is_paste(self, key: str) -> bool:
        if key in ("v", "V"):
            return bool(self.modifiers & (Modifiers.CTRL | Modifiers.META))
        return key == "Insert" and bool(self.modifiers & Modifiers.SHIFT)

    # ------------------------------------------------------------ touch

    async def _touch(self, message: TouchStart | TouchMove | TouchEnd) -> None:
        # CDP takes the complete set of active points each time; a point
        # missing from the set is released.
        if isinstance(message, TouchEnd):
            if self.touches.pop(message.id, None) is None:
                return
            kind = "touchMove" if self.touches else "touchEnd"
        else:
            if isinstance(message, TouchMove) and message.id not in self.touches:
                return  # moved without a start we forwarded
            x, y = self._clamp(message.x, message.y)
            started = message.id not in self.touches
            self.touches[message.id] = {
                "x": x,
                "y": y,
                "id": message.id,
                "force": round(message.pressure / 255, 4),
                "radiusX": 1,
                "radiusY": 1,
            }
            kind = "touchStart" if started else "touchMove"
        await self.cdp.send(
            "Input.dispatchTouchEvent",
            {
                "type": kind,
                "touchPoints": list(self.touches.values()),
                "modifiers": self._cdp_modifiers(),
            },
        )


def _playwright_key(key: str, code: str) -> str | None:
    """The name to give `keyboard.down()`: the DOM key itself (Playwright knows
    the DOM names: "a", "A", "Enter", "ArrowLeft", "Control", " "; any other
    single character is typed as text), else its code ("KeyQ" for a dead
    key). Keys that mean nothing to a page ("Unidentified", "Process" from an
    IME) are dropped: the IME's result arrives as PASTE/typed text instead."""
    if key in ("Unidentified", "Process", "Dead") or not key:
        return code or None
    return key
