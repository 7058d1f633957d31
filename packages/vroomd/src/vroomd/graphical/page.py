"""A `Screen`: what viewers watch and drive, one page of a browser context at a time.

Like a browser window with tabs: a popup or a NAVIGATE with `newTab` becomes
the page shown, and when it closes the one before it comes back. The screen
owns the page's CDP session, its screencast, its input state and one input
worker (so input reaches the page in arrival order whoever sent it), and
reports what viewers are told: STATE (url, title, loading, history, agent
state), CURSOR, the viewport, and clipboard changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from vroom_graphical.inputs import InputMessage

from .input import InputMapper
from .screencast import FrameSlot, Screencast

if TYPE_CHECKING:
    from .config import GraphicalConfig

log = logging.getLogger("vroomd.graphical")

MAX_PENDING_INPUT = 4096
"""Input events waiting for the page; beyond this a flooding client's input is dropped."""
CURSOR_INTERVAL = 0.05

# The CSS cursor the page shows at (x, y). `auto` is resolved the way the
# browser does it: text fields and text under the pointer show `text`.
CURSOR_SCRIPT = """
([x, y]) => {
  const el = document.elementFromPoint(x, y);
  if (!el) return "default";
  let cursor = getComputedStyle(el).cursor || "auto";
  if (cursor !== "auto") return cursor;
  const tag = el.tagName;
  const textInput = tag === "TEXTAREA" || (tag === "INPUT" &&
    !["button", "submit", "reset", "checkbox", "radio", "range", "color", "file", "image"]
      .includes(el.type));
  if (textInput || el.isContentEditable) return "text";
  const range = document.caretRangeFromPoint && document.caretRangeFromPoint(x, y);
  const node = range && range.startContainer;
  if (node && node.nodeType === 3 && node.textContent.trim()) {
    const r = document.createRange();
    r.selectNodeContents(node);
    for (const box of r.getClientRects()) {
      if (x >= box.left && x <= box.right && y >= box.top && y <= box.bottom) return "text";
    }
  }
  return "default";
}
"""


class Watcher(Protocol):
    """What a screen tells each of its viewers (service.Viewer)."""

    capabilities: frozenset[str]

    def screen_state(self, state: PageState) -> None: ...

    def screen_cursor(self, kind: str, x: int, y: int) -> None: ...

    def screen_viewport(self, width: int, height: int) -> None: ...

    def screen_clipboard(self, text: str) -> None: ...


@dataclass(frozen=True, slots=True)
class PageState:
    url: str = ""
    title: str = ""
    loading: bool = False
    can_go_back: bool = False
    can_go_forward: bool = False
    agent: str = "idle"


class Screen:
    def __init__(
        self,
        config: GraphicalConfig,
        context: Any,
        viewport: tuple[int, int],
        *,
        clipboard: Any,
        owns_context: bool,
        owner: object = None,
    ) -> None:
        self.config = config
        self.context = context
        self.viewport = viewport
        self.clipboard = clipboard
        """The AgentBrowser (its per-owner clipboard)."""
        self.owner = owner
        """Whose clipboard this screen's pages use (browser.py)."""
        self.owns_context = owns_context
        self.pages: list[Any] = []
        """Open pages, the one shown last (tabs)."""
        self.page: Any = None
        self.cdp: Any = None
        self.input: InputMapper | None = None
        self.screencast: Screencast | None = None
        self.viewers: set[Watcher] = set()
        self.slots: set[FrameSlot] = set()
        self.state = PageState()
        self.activity: Counter[str] = Counter()
        self.closed = False
        self.dropped_input = 0
        self._loading: set[str] = set()
        self._main_frame: str | None = None
        self._ready = asyncio.Event()
        self._queue: deque[tuple[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._handling = False
        """The worker has taken an input off the queue and not finished it."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._state_handle: asyncio.TimerHandle | None = None
        self._cursor: tuple[str, int, int] | None = None
        self._cursor_task: asyncio.Task[None] | None = None
        self._cursor_due = False
        self._resize_to: tuple[int, int] | None = None
        self._resize_task: asyncio.Task[None] | None = None
        self._worker = self._spawn(self._run_input())

    # ------------------------------------------------------------ pages

    async def start(self) -> None:
        page = await self.context.new_page()
        await self._show(page)

    async def open_tab(self, url: str | None = None) -> Any:
        page = await self.context.new_page()
        await self._show(page)
        if url is not None:
            await page.goto(url)
        return page

    async def _show(self, page: Any) -> None:
        """Make `page` the one viewers see (a new tab, a popup, or back to an older one)."""
        if self.closed:
            return
        self._ready.clear()
        try:
            if self.screencast is not None:
                self.screencast.close_keep_slots()
                self.screencast = None
            if self.cdp is not None:
                old, self.cdp = self.cdp, None
                try:
                    await old.detach()
                except Exception:
                    pass  # its page is gone
            if page not in self.pages:
                self.pages.append(page)
                page.on("popup", lambda popup: self._spawn(self._show(popup)))
                page.on("close", lambda closed: self._spawn(self._on_close(closed)))
            else:
                self.pages.remove(page)
                self.pages.append(page)
            if page.viewport_size != {"width": self.viewport[0], "height": self.viewport[1]}:
                await page.set_viewport_size(
                    {"width": self.viewport[0], "height": self.viewport[1]}
                )
            cdp = await self.context.new_cdp_session(page)
            await cdp.send("Page.enable")
            tree = await cdp.send("Page.getFrameTree")
            self._main_frame = tree["frameTree"]["frame"]["id"]
            self._loading.clear()
            cdp.on("Page.frameStartedLoading", self._on_started)
            cdp.on("Page.frameStoppedLoading", self._on_stopped)
            cdp.on("Page.frameNavigated", lambda _e: self.schedule_state())
            cdp.on("Page.navigatedWithinDocument", self._on_same_document)
            self.page, self.cdp = page, cdp
            self.input = InputMapper(page, cdp, self.viewport)
            self.input.before_paste = lambda: self.clipboard.claim(self.owner)
            self.input.on_move = self._want_cursor
            self.screencast = Screencast(
                cdp, quality=self.config.jpeg_quality, max_size=self.config.max_viewport
            )
            for slot in self.slots:
                self.screencast.add(slot)
        finally:
            if not self.closed:
                self._ready.set()
        self.schedule_state(0)

    async def _on_close(self, page: Any) -> None:
        if page in self.pages:
            self.pages.remove(page)
        if self.closed or page is not self.page:
            return
        self.page = None
        try:
            if self.pages:
                await self._show(self.pages[-1])
            else:
                await self.start()
        except Exception as exc:  # the context or the whole browser is gone
            log.debug("no page to show: %s", _first_line(exc))

    async def ready(self) -> Any:
        """The page shown, once it can take input."""
        await self._ready.wait()
        if self.closed or self.page is None:
            raise ScreenClosed("the agent's page is closed")
        return self.page

    # ------------------------------------------------------------ viewers

    def attach(self, viewer: Watcher) -> None:
        self.viewers.add(viewer)
        if self.state.url:  # else the first refresh tells everyone
            viewer.screen_state(self.state)

    def detach(self, viewer: Watcher) -> None:
        self.viewers.discard(viewer)

    def watch(self, slot: FrameSlot) -> None:
        self.slots.add(slot)
        if self.screencast is not None:
            self.screencast.add(slot)

    def unwatch(self, slot: FrameSlot) -> None:
        self.slots.discard(slot)
        if self.screencast is not None:
            self.screencast.discard(slot)
        slot.close()

    # ------------------------------------------------------------ input

    def submit(self, message: InputMessage) -> bool:
        return self._submit("input", message)

    def submit_paste(self, text: str) -> bool:
        return self._submit("paste", text)

    def release_input(self) -> None:
        self._submit("release", None, force=True)

    def _submit(self, kind: str, item: Any, *, force: bool = False) -> bool:
        if self.closed:
            return False
        if len(self._queue) >= MAX_PENDING_INPUT and not force:
            self.dropped_input += 1
            return False
        self._queue.append((kind, item))
        self._wake.set()
        return True

    async def _run_input(self) -> None:
        while not self.closed:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            kind, item = self._queue.popleft()
            self._handling = True
            try:
                await self.ready()
                mapper = self.input
                assert mapper is not None
                if kind == "input":
                    await mapper.handle(item)
                elif kind == "paste":
                    await mapper.paste(item)
                else:
                    await mapper.release_all()
            except ScreenClosed:
                return
            except Exception as exc:  # the page navigated or closed under the event
                log.debug("input %s dropped: %s", kind, _first_line(exc))
            finally:
                self._handling = False

    async def idle(self) -> None:
        """Until every input submitted so far has been dispatched (tests, benchmarks).

        An empty queue is not enough: the worker may still be awaiting the
        last input's CDP call."""
        while (self._queue or self._handling) and not self.closed:
            await asyncio.sleep(0.002)
        if self.input is not None:
            await self.input._flush_move()

    # ------------------------------------------------------------ cursor

    def _want_cursor(self) -> None:
        if not any("cursor" in v.capabilities for v in self.viewers):
            return
        self._cursor_due = True
        if self._cursor_task is None:
            self._cursor_task = self._spawn(self._cursor_loop())

    async def _cursor_loop(self) -> None:
        try:
            while self._cursor_due and not self.closed:
                self._cursor_due = False
                page, mapper = self.page, self.input
                if page is None or mapper is None:
                    return
                x, y = mapper.x, mapper.y
                try:
                    kind = await page.evaluate(CURSOR_SCRIPT, [x, y])
                except Exception:
                    kind = "default"
                if not isinstance(kind, str) or not kind:
                    kind = "default"
                cursor = (kind[:64], x, y)
                if cursor != self._cursor:
                    self._cursor = cursor
                    for viewer in list(self.viewers):
                        viewer.screen_cursor(*cursor)
                await asyncio.sleep(CURSOR_INTERVAL)
        finally:
            self._cursor_task = None

    # ------------------------------------------------------------ state

    def _on_started(self, event: dict[str, Any]) -> None:
        self._loading.add(event.get("frameId", ""))
        self.schedule_state(0)

    def _on_stopped(self, event: dict[str, Any]) -> None:
        self._loading.discard(event.get("frameId", ""))
        self.schedule_state(0)

    def _on_same_document(self, _event: dict[str, Any]) -> None:
        # A single-page app changes its title a moment after pushState.
        self.schedule_state()
        asyncio.get_running_loop().call_later(0.5, self.schedule_state)

    def schedule_state(self, delay: float = 0.05) -> None:
        if self.closed or self._state_handle is not None:
            return
        loop = asyncio.get_running_loop()
        self._state_handle = loop.call_later(delay, lambda: self._spawn(self._refresh_state()))

    @contextlib.contextmanager
    def busy(self, what: str) -> Iterator[None]:
        """The agent's state while a COMMAND runs: browsing, thinking..."""
        self.activity[what] += 1
        self.schedule_state(0)
        try:
            yield
        finally:
            self.activity[what] -= 1
            self.schedule_state(0)

    def _agent_state(self, loading: bool) -> str:
        if self.activity["thinking"] > 0:
            return "thinking"
        if loading or self.activity["browsing"] > 0:
            return "browsing"
        return "idle"

    async def _refresh_state(self) -> None:
        self._state_handle = None
        cdp = self.cdp
        if cdp is None or self.closed:
            return
        state = self.state
        loading = bool(self._main_frame in self._loading)
        try:
            history = await cdp.send("Page.getNavigationHistory")
            index = int(history["currentIndex"])
            entries = history["entries"]
            entry = entries[index]
            state = PageState(
                url=str(entry.get("url", "")),
                title=str(entry.get("title", "")),
                loading=loading,
                can_go_back=index > 0,
                can_go_forward=index < len(entries) - 1,
                agent=self._agent_state(loading),
            )
        except Exception as exc:  # the page is gone or changing
            log.debug("state: %s", _first_line(exc))
            state = PageState(
                state.url,
                state.title,
                loading,
                state.can_go_back,
                state.can_go_forward,
                self._agent_state(loading),
            )
        if state != self.state:
            self.state = state
            for viewer in list(self.viewers):
                viewer.screen_state(state)

    # ------------------------------------------------------------ resize

    def resize(self, width: int, height: int) -> None:
        """Follow a client's RESIZE; a burst of them (a window being dragged)
        ends in one resize to the last size."""
        self._resize_to = (width, height)
        if self._resize_task is None:
            self._resize_task = self._spawn(self._resize_loop())

    async def _resize_loop(self) -> None:
        try:
            while self._resize_to is not None and not self.closed:
                size, self._resize_to = self._resize_to, None
                if size == self.viewport:
                    continue
                page = await self.ready()
                await page.set_viewport_size({"width": size[0], "height": size[1]})
                self.viewport = size
                if self.input is not None:
                    self.input.resize(*size)
                if self.screencast is not None:
                    self.screencast.refresh()
                for viewer in list(self.viewers):
                    viewer.screen_viewport(*size)
        except Exception as exc:
            log.debug("resize: %s", _first_line(exc))
        finally:
            self._resize_task = None

    # ------------------------------------------------------------ clipboard

    async def on_copy(self) -> None:
        """The page copied or cut: push the new clipboard to the viewers."""
        try:
            text = await self.clipboard.copied(self.owner)
        except Exception as exc:
            log.debug("clipboard read: %s", _first_line(exc))
            return
        if text is None:
            return
        for viewer in list(self.viewers):
            viewer.screen_clipboard(text)

    # ------------------------------------------------------------ lifecycle

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._ready.set()
        self._wake.set()
        if self._state_handle is not None:
            self._state_handle.cancel()
        if self.screencast is not None:
            self.screencast.close()
        for slot in self.slots:
            slot.close()
        self.slots.clear()
        self.viewers.clear()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        try:
            if self.owns_context:
                await self.context.close()
            else:
                for page in list(self.pages):
                    await page.close()
        except Exception as exc:
            log.debug("closing the screen: %s", _first_line(exc))
        self.pages.clear()
        self.page = self.cdp = self.input = None


class ScreenClosed(Exception):
    pass


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
