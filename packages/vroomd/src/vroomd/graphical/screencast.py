"""The agent's screen as JPEG frames: CDP `Page.startScreencast`, newest frame wins.

Chromium pushes a frame whenever the page's pixels change (up to the display
rate, ~60 fps here) and waits for `Page.screencastFrameAck` before the next
one. We acknowledge at once, so Chromium never waits for the slowest viewer,
and hand each frame to every viewer's `FrameSlot`. A slot holds one frame: a
viewer whose connection cannot keep up gets the newest frame when it is ready
for one, and the frames in between are dropped, never queued. Memory per
viewer is therefore one frame whatever the client's speed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("vroomd.graphical")

START_RETRY_DELAY = 0.1
START_RETRIES = 50
"""`Page.startScreencast` on a page that is not attached yet (a new page
mid-navigation) fails with "Not attached to an active page" and leaves the
viewers without a single frame: it is retried every 0.1 s, up to 5 s."""


class FrameSlot:
    """One viewer's newest-frame-wins mailbox.

    A viewer either awaits `wait()` or sets `listener`, a plain callback run
    on every `put()` and on `close()`: the video track uses the latter, so
    that a frame reaches its encoder without a task of its own in between.
    """

    __slots__ = ("_frame", "_waiter", "closed", "delivered", "dropped", "listener")

    def __init__(self) -> None:
        self._frame: Any = None
        self._waiter: asyncio.Future[None] | None = None
        self.delivered = 0
        self.dropped = 0
        """Frames replaced by a newer one before the viewer took them."""
        self.closed = False
        self.listener: Callable[[], None] | None = None

    def put(self, frame: Any) -> None:
        if self.closed:
            return
        if self._frame is not None:
            self.dropped += 1
        self._frame = frame
        self._wake()

    @property
    def pending(self) -> bool:
        return self._frame is not None

    async def wait(self) -> bool:
        """Until a frame is waiting; False once the slot is closed."""
        while self._frame is None:
            if self.closed:
                return False
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return True

    def take(self) -> Any:
        """The newest frame, if any (taking it empties the slot)."""
        frame, self._frame = self._frame, None
        if frame is not None:
            self.delivered += 1
        return frame

    def close(self) -> None:
        self.closed = True
        self._frame = None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self.listener is not None:
            self.listener()


class Screencast:
    """`Page.startScreencast` on one page's CDP session, fanned out to slots.

    Runs only while someone watches: `add()` of the first slot starts it,
    `discard()` of the last stops it. The last frame is kept so that a viewer
    who joins a still page gets a picture at once (Chromium only sends frames
    when something changes).
    """

    def __init__(
        self,
        cdp: Any,
        *,
        quality: int = 70,
        max_size: tuple[int, int] = (1920, 1200),
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.cdp = cdp
        self.quality = quality
        self.max_size = max_size
        self.slots: set[FrameSlot] = set()
        self.last: bytes | None = None
        self.frames = 0
        self.running = False
        self._on_error = on_error
        self._listening = False
        self._retries = 0
        self._retry: asyncio.TimerHandle | None = None

    def add(self, slot: FrameSlot) -> None:
        self.slots.add(slot)
        if self.last is not None:
            slot.put(self.last)
        if not self.running:
            self._start()

    def discard(self, slot: FrameSlot) -> None:
        self.slots.discard(slot)
        slot.close()
        if not self.slots and self.running:
            self._stop()

    def refresh(self) -> None:
        """Ask for a fresh frame now (after a resize: the old size is stale)."""
        self.last = None
        if self.running:
            self._stop()
            self._start()

    def close_keep_slots(self) -> set[FrameSlot]:
        """Stop (the page is no longer shown); the viewers' slots stay open
        for the next page's screencast."""
        slots, self.slots = self.slots, set()
        if self.running:
            self._stop()
        return slots

    def close(self) -> None:
        for slot in list(self.slots):
            slot.close()
        self.slots.clear()
        self.last = None
        if self.running:
            self._stop()

    # ------------------------------------------------------------ CDP

    def _start(self) -> None:
        if not self._listening:
            self.cdp.on("Page.screencastFrame", self._on_frame)
            self._listening = True
        self.running = True
        width, height = self.max_size
        self._call(
            "Page.startScreencast",
            {"format": "jpeg", "quality": self.quality, "maxWidth": width, "maxHeight": height},
        )

    def _stop(self) -> None:
        self.running = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self._call("Page.stopScreencast", None)

    def _restart(self) -> None:
        self._retry = None
        if self.running:
            width, height = self.max_size
            self._call(
                "Page.startScreencast",
                {"format": "jpeg", "quality": self.quality, "maxWidth": width, "maxHeight": height},
            )

    def _on_frame(self, params: dict[str, Any]) -> None:
        self._call("Page.screencastFrameAck", {"sessionId": params.get("sessionId")})
        if not self.running:
            return
        try:
            frame = base64.b64decode(params.get("data") or "", validate=True)
        except (binascii.Error, ValueError):
            return
        if not frame.startswith(b"\xff\xd8"):
            return
        self.frames += 1
        self.last = frame
        for slot in self.slots:
            slot.put(frame)

    def _call(self, method: str, params: dict[str, Any] | None) -> None:
        task = asyncio.ensure_future(self.cdp.send(method, params))
        task.add_done_callback(lambda done: self._done(done, method))

    def _done(self, task: asyncio.Future[Any], method: str = "") -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            if method == "Page.startScreencast":
                self._retries = 0
            return
        log.debug("screencast: %s: %r", method, exc)
        if method == "Page.startScreencast" and self.running and self._retries < START_RETRIES:
            self._retries += 1
            if self._retry is None:
                loop = asyncio.get_running_loop()
                self._retry = loop.call_later(START_RETRY_DELAY, self._restart)
            return
        if self._on_error is not None:
            self._on_error(exc)
