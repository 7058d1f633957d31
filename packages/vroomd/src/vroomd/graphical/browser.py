"""The agent's browser: Debian's Chromium driven by Playwright, started on first use.

One Chromium per vroomd, launched when the first graphical session has shaken
hands (a daemon that only serves terminals never starts it) and relaunched if
it dies. Contexts come from here with the page hooks vroomd relies on (the
copy/cut watch for the transparent clipboard).

The clipboard is Chromium's, one for the whole browser: every context shares
it. vroomd gives each owner (a connection's context, or everyone in shared
mode) its own clipboard on top of it: the agent's pages may write the
clipboard but never read it (no `clipboard-read` permission); an owner's
CLIPBOARD get returns what that owner last set or copied; before a paste
shortcut reaches a page, its owner's text is put back into Chromium's
clipboard (`claim`); and a copy reported by a page that does not change the
clipboard is not taken as that page's (a page cannot make vroomd read out
another connection's copy). Reading and writing goes through a helper page
at an https origin answered by Playwright's router (no network), because
`navigator.clipboard` exists only in secure contexts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .config import GraphicalConfig

log = logging.getLogger("vroomd.graphical")

HOUSE_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
CLIPBOARD_ORIGIN = "https://vroomd-clipboard.invalid"

# Runs in every document of the agent's pages before the page's own scripts.
# A copy/cut (keyboard, menu or script) or navigator.clipboard.writeText by
# the page tells vroomd, which pushes the new clipboard to the viewers.
PAGE_SCRIPT = """
(() => {
  if (window.__vroomdHooked) return;
  Object.defineProperty(window, "__vroomdHooked", { value: true });
  const notify = (kind) => {
    try { const b = window.__vroomd; if (b) b(kind); } catch (e) {}
  };
  const later = () => setTimeout(() => notify("copy"), 0);
  document.addEventListener("copy", later, true);
  document.addEventListener("cut", later, true);
  const proto = window.Clipboard && window.Clipboard.prototype;
  if (proto && proto.writeText) {
    const writeText = proto.writeText;
    proto.writeText = function (text) {
      const done = writeText.call(this, text);
      done.then(later, () => {});
      return done;
    };
  }
})();
"""

Binding = Callable[[Any, str], Awaitable[None] | None]


class BrowserUnavailable(Exception):
    """Chromium could not be started (missing, or it crashed at launch)."""


class AgentBrowser:
    def __init__(self, config: GraphicalConfig) -> None:
        self.config = config
        self._playwright: Any = None
        self._browser: Any = None
        self._lock = asyncio.Lock()
        self._clipboard_page: Any = None
        self._clipboard_lock = asyncio.Lock()
        self._owner: object = None
        """Whose text Chromium's clipboard holds."""
        self._known: str | None = None
        self._owned: dict[object, str] = {}
        self.version = ""
        self.launches = 0
        self.on_lost: Callable[[], None] | None = None
        """Called when Chromium goes away unasked (crash, killed)."""

    @property
    def running(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    async def browser(self) -> Any:
        async with self._lock:
            if self.running:
                return self._browser
            if self._playwright is None:
                from playwright.async_api import async_playwright

                self._playwright = await async_playwright().start()
            try:
                browser = await self._playwright.chromium.launch(
                    executable_path=self.config.chromium,
                    headless=self.config.headless,
                    args=[*HOUSE_ARGS, *self.config.chromium_args],
                )
            except Exception as exc:
                raise BrowserUnavailable(
                    f"cannot start Chromium ({self.config.chromium}): {_first_line(exc)}"
                ) from None
            self._browser = browser
            self._clipboard_page = None
            self.version = browser.version
            self.launches += 1
            browser.on("disconnected", self._on_disconnected)
            log.info("agent browser started: Chromium %s", self.version)
            return browser

    def _on_disconnected(self, browser: Any) -> None:
        if browser is self._browser:
            log.warning("the agent browser went away; the next session starts a new one")
            self._browser = None
            self._clipboard_page = None
            if self.on_lost is not None:
                self.on_lost()

    async def new_context(self, viewport: tuple[int, int], binding: Binding | None = None) -> Any:
        browser = await self.browser()
        context = await browser.new_context(
            viewport={"width": viewport[0], "height": viewport[1]},
            device_scale_factor=1,
        )
        try:
            # Copy buttons of the agent's pages use navigator.clipboard.writeText;
            # reading stays refused: the clipboard is shared by every context.
            await context.grant_permissions(["clipboard-write"])
            await context.add_init_script(script=PAGE_SCRIPT)
            if binding is not None:
                await context.expose_binding("__vroomd", binding)
        except BaseException:
            await _quietly(context.close())
            raise
        return context

    # ------------------------------------------------------------ clipboard

    async def _helper(self) -> Any:
        if self._clipboard_page is not None and not self._clipboard_page.is_closed():
            return self._clipboard_page
        browser = await self.browser()
        context = await browser.new_context()
        await context.route(
            f"{CLIPBOARD_ORIGIN}/**",
            lambda route: route.fulfill(
                status=200, content_type="text/html", body="<!doctype html><title>clipboard</title>"
            ),
        )
        await context.grant_permissions(
            ["clipboard-read", "clipboard-write"], origin=CLIPBOARD_ORIGIN
        )
        page = await context.new_page()
        await page.goto(f"{CLIPBOARD_ORIGIN}/")
        self._clipboard_page = page
        return page

    async def _read(self) -> str:
        page = await self._helper()
        text = await page.evaluate("navigator.clipboard.readText()")
        return text if isinstance(text, str) else ""

    async def _write(self, text: str) -> None:
        page = await self._helper()
        await page.evaluate("text => navigator.clipboard.writeText(text)", text)

    async def write_clipboard(self, text: str, owner: object = None) -> None:
        """CLIPBOARD set: the owner's clipboard, and Chromium's."""
        async with self._clipboard_lock:
            await self._write(text)
            self._take(owner, text)

    async def read_clipboard(self, owner: object = None) -> str:
        """CLIPBOARD get: what this owner last set or copied."""
        async with self._clipboard_lock:
            if self._owner is not owner:
                return self._owned.get(owner, "")
            text = await self._read()
            self._take(owner, text)
            return text

    async def claim(self, owner: object = None) -> None:
        """Before a paste reaches one of the owner's pages: its own text."""
        async with self._clipboard_lock:
            if self._owner is not owner:
                text = self._owned.get(owner, "")
                await self._write(text)
                self._take(owner, text)

    async def copied(self, owner: object = None) -> str | None:
        """One of the owner's pages copied: the new text, or None when the
        clipboard did not change (nothing was copied, or the page only said so)."""
        async with self._clipboard_lock:
            text = await self._read()
            if text == self._known and self._owner is not owner:
                return None
            self._take(owner, text)
            return text

    def forget(self, owner: object) -> None:
        self._owned.pop(owner, None)
        if self._owner is owner:
            self._owner = None

    def _take(self, owner: object, text: str) -> None:
        self._owner, self._known = owner, text
        self._owned[owner] = text

    # ------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        async with self._lock:
            browser, self._browser = self._browser, None
            self._clipboard_page = None
            if browser is not None:
                await _quietly(browser.close())
            if self._playwright is not None:
                playwright, self._playwright = self._playwright, None
                await _quietly(playwright.stop())


async def _quietly(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception as exc:
        log.debug("ignored while closing: %r", exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
