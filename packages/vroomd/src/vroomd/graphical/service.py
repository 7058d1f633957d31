"""vroomd's graphical service: `GraphicalServer` (sans-IO) wired to the agent's Chromium.

`GraphicalHub` lives as long as the daemon: the agent browser (started on the
first graphical session), the shared screen in `--browser-context shared`,
the page's HTTP routes and the session limit. `GraphicalService` serves one
OpenMux connection: like the terminal service it taps the connection's events
before the asyncio layer queues them, takes the graphical channels' events
(`vroom.graphical.control`, `pointer`, `button`, `video`, `#N` suffixes) and
leaves everything else to the next tap (terminal) and the asyncio layer. One
`Viewer` per graphical session runs its commands, video and replies.

Nothing here blocks the event tap: protocol state changes happen inside the
tap (in arrival order), and everything that talks to Chromium is queued to
the screen's input worker or the viewer's command worker.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import socket
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import openmux
from openmux import ChannelOpened, ChannelRequested, MessageReceived
from openmux.aio import SessionClosedError
from openmux.aio.taps import ChannelTap
from vroom_graphical import (
    AgentInfo,
    BrowserState,
    ButtonInput,
    ChatReceived,
    ClipboardReceived,
    CommandReceived,
    ErrorCode,
    GraphicalServer,
    HandshakeDone,
    LocalProtocolError,
    ModeChanged,
    NavigateRequested,
    Notification,
    PasteReceived,
    PointerInput,
    Resized,
    SessionClosed,
    State,
    VideoClosed,
    VideoOpened,
    Viewport,
    encode_control,
    parse_name,
)
from vroom_graphical.channels import Role

from . import http
from .browser import AgentBrowser, BrowserUnavailable
from .commands import CommandFailed, Outcome, interpret, run_command
from .config import GraphicalConfig
from .page import PageState, Screen, ScreenClosed
from .screencast import FrameSlot

if TYPE_CHECKING:
    from openmux.aio import Session

log = logging.getLogger("vroomd.graphical")


def _claims(name: str) -> bool:
    """The graphical protocol's channels (`vroom.graphical.*`, with `#N`)."""
    return parse_name(name) is not None


MAX_QUEUED_COMMANDS = 64
VIDEO_WINDOW = 2
"""Video frames a client may have on the way to it, unread (see Viewer._send_video)."""
UNSENT_LIMIT = 256 * 1024
"""TCP_NOTSENT_LOWAT on a connection that carries video: at most this much
unsent data waits in the kernel, so a slow client's lag stays a few frames."""


class GraphicalHub:
    """Daemon-wide state of the graphical service."""

    def __init__(self, config: GraphicalConfig, *, token: str | None = None) -> None:
        self.config = config
        self.token = token
        self.browser = AgentBrowser(config)
        self.browser.on_lost = self._browser_lost
        self.services: set[GraphicalService] = set()
        self.viewers = 0
        self._shared: Screen | None = None
        self._shared_context: Any = None
        self._shared_lock = asyncio.Lock()
        self.max_sessions = 32
        self._background: set[asyncio.Task[Any]] = set()
        self.webrtc: Any = None
        """`vroomd.webrtc.WebRTCService` when the daemon serves WebRTC (set by it)."""

    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """A cleanup task that outlives whoever started it (kept referenced)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # ------------------------------------------------------------ wiring

    def attach(self, session: Session, *, refuse: bool = False) -> GraphicalService:
        service = GraphicalService(self, session, refuse=refuse)
        self.services.add(service)
        service.install()
        return service

    def http(self, request: Any) -> Any:
        return http.respond(request)

    def channel_policy(self, spec: openmux.ChannelSpec) -> int | str | None:
        from vroom_graphical import channel_policy

        return channel_policy(spec)

    # ------------------------------------------------------------ auth

    def authorised(self, session: Session) -> str | None:
        """None if this connection may have graphical sessions, else why not.

        Browsers cannot set `Authorization` on a WebSocket upgrade, and the
        daemon leaves OpenMux-level auth to each protocol (the terminal has
        its own AUTH), so the page sends the token in the upgrade URL's
        query (`/omux/vroom?token=...`); a Bearer header works too. Without
        a token (--no-auth, loopback only) a browser page from another
        origin is refused, so that a web site the user visits cannot drive
        the agent's browser through the user's own browser.
        """
        info = session.transport_info
        headers = info.get("headers")
        if self.token is None:
            from ..origin import foreign_origin

            return foreign_origin(info)
        if session.connection.transport_authenticated:
            return None
        expected = self.token.encode()
        bearer = headers.get("Authorization") if headers is not None else None
        scheme, _, given = str(bearer or "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected):
            return None
        path = str(info.get("path") or "")
        given = parse_qs(urlsplit(path).query).get("token", [""])[-1]
        if given and hmac.compare_digest(given.encode(), expected):
            return None
        return "authentication required: give the token (?token= in the WebSocket URL)"

    # ------------------------------------------------------------ screens

    def clamp(self, viewport: Viewport) -> tuple[int, int]:
        (lo_w, lo_h), (hi_w, hi_h) = self.config.min_viewport, self.config.max_viewport
        return min(max(viewport.width, lo_w), hi_w), min(max(viewport.height, lo_h), hi_h)

    def shared_viewport(self) -> tuple[int, int] | None:
        if self._shared is not None and not self._shared.closed:
            return self._shared.viewport
        return None

    async def shared_screen(self, viewport: tuple[int, int]) -> Screen:
        async with self._shared_lock:
            screen = self._shared
            if screen is not None and not screen.closed and self.browser.running:
                return screen
            context = await self.browser.new_context(
                viewport, self._binding(lambda: [self._shared])
            )
            self._shared_context = context
            screen = Screen(
                self.config,
                context,
                viewport,
                clipboard=self.browser,
                owns_context=True,
                owner=self,
            )
            await screen.start()
            self._shared = screen
            return screen

    @staticmethod
    def _binding(screens: Callable[[], list[Screen | None]]) -> Callable[..., Any]:
        async def binding(source: Any, kind: str = "") -> None:
            page = source.get("page") if isinstance(source, dict) else None
            if kind != "copy":
                return
            for screen in screens():
                if screen is not None and page in screen.pages:
                    await screen.on_copy()

        return binding

    def _browser_lost(self) -> None:
        """Chromium died: every graphical session ends with a clear error
        (their pages are gone); the next session starts a new browser."""
        self._shared = None
        self._shared_context = None
        for service in list(self.services):
            service.context = None
            for viewer in list(service.viewers.values()):
                viewer.fail("the agent's browser stopped; connect again to start a new one")

    async def close(self) -> None:
        self.browser.on_lost = None  # closing it is not losing it
        for service in list(self.services):
            await service.close()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._shared is not None:
            await self._shared.close()
            self._shared = None
        await self.browser.close()


class GraphicalService:
    """The graphical sessions of one OpenMux connection."""

    def __init__(self, hub: GraphicalHub, session: Session, *, refuse: bool = False) -> None:
        self.hub = hub
        self.config = hub.config
        self.session = session
        self.refuse = refuse
        self.server = GraphicalServer(
            session.connection,
            viewport=self._viewport_policy,
            agent=AgentInfo("vroomd", "idle", "chromium"),
            allow_evaluate=self.config.allow_evaluate,
            allowed_schemes=self.config.allowed_schemes,
        )
        self.viewers: dict[str, Viewer] = {}
        self.video: set[str] = set()
        """Sessions whose `video` channel is open."""
        self.context: Any = None
        self._context_lock = asyncio.Lock()
        self.closed = False
        self._refusal = "server limit reached" if refuse else hub.authorised(session)
        self._unsent_limited = False
        self._closing: asyncio.Task[None] | None = None
        self.clipboard_owner: object = hub if self.config.browser_context == "shared" else self
        """Whose clipboard these sessions use: the connection's own, or everyone's."""

    # ------------------------------------------------------------ the tap

    def install(self) -> None:
        """Take the graphical channels' events ahead of the asyncio layer."""

        def adopt(channel: openmux.Channel, unread: list[Any]) -> None:
            # GraphicalServer adopted it when it was built, but said nothing.
            parsed = parse_name(channel.name)
            self._feed(
                ChannelOpened(channel, None, False),
                adopted=parsed is not None and parsed[0] is Role.VIDEO,
            )
            for message in unread:
                self._feed(MessageReceived(channel.id, message.type, message.data))

        ChannelTap(self.session, _claims, self._feed).install(adopt)
        self.flush()

    def _feed(self, event: openmux.Event, *, adopted: bool = False) -> None:
        if self._refusal is not None:
            self._refuse_event(event)
            return
        try:
            results = self.server.handle_event(event)
        except Exception:  # a bug on our side must not kill the connection's loop
            log.exception("graphical protocol failed on %r", type(event).__name__)
            return
        if adopted and isinstance(event, ChannelOpened):
            parsed = parse_name(event.channel.name)
            if parsed is not None:
                results.append(VideoOpened(parsed[1]))
        for result in results:
            try:
                self._on_event(result)
            except Exception:
                log.exception("handling %r failed", result)

    def _refuse_event(self, event: openmux.Event) -> None:
        """Not authorised (or over the limit): graphical channels are refused
        without a graphical session ever starting."""
        mux = self.session.connection
        reason = self._refusal or "refused"
        try:
            if isinstance(event, ChannelRequested):
                mux.reject_channel(event.request_id, ErrorCode.NOT_AUTHORISED, reason)
            elif isinstance(event, ChannelOpened):
                parsed = parse_name(event.channel.name)
                if parsed is not None and parsed[0] is Role.CONTROL:
                    # The client reads an error before the handshake reply as a refusal.
                    note = Notification("error", reason, code=int(ErrorCode.NOT_AUTHORISED))
                    type_, payload = encode_control(note, "json")
                    mux.send_message(event.channel.id, type_, payload)
                mux.close_channel(event.channel.id, reason)
        except openmux.OpenMuxError:
            pass
        if isinstance(event, ChannelOpened):
            log.info("graphical session refused: %s", reason)

    def flush(self) -> None:
        if not self.closed or self.session.is_open:
            self.session.flush()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A GraphicalServer call from a task (not the tap): the session may be gone."""
        try:
            result = fn(*args, **kwargs)
        except LocalProtocolError as exc:
            log.debug("graphical send dropped: %s", exc)
            return None
        self.flush()
        return result

    # ------------------------------------------------------------ events

    def _viewport_policy(self, client: Viewport) -> Viewport:
        if self.config.browser_context == "shared":
            shared = self.hub.shared_viewport()
            if shared is not None:
                return Viewport(*shared)
        return Viewport(*self.hub.clamp(client))

    def _on_event(self, event: Any) -> None:
        key = getattr(event, "session", "")
        viewer = self.viewers.get(key)
        if isinstance(event, HandshakeDone):
            if self.hub.viewers >= self.hub.max_sessions:
                self.server.send_notification(
                    f"server limit: {self.hub.max_sessions} graphical sessions",
                    type="error",
                    code=ErrorCode.INTERNAL,
                    session=key,
                )
                self.server.close_session(key, "server limit")
                return
            viewer = Viewer(self, key, event)
            self.viewers[key] = viewer
            self.hub.viewers += 1
            viewer.start()
        elif viewer is None:
            if isinstance(event, VideoOpened):
                self.video.add(key)
            elif isinstance(event, VideoClosed):
                self.video.discard(key)
            return
        elif isinstance(event, PointerInput | ButtonInput):
            viewer.input(event.input)
        elif isinstance(event, PasteReceived):
            viewer.paste(event.text)
        elif isinstance(event, CommandReceived):
            viewer.enqueue(("command", event))
        elif isinstance(event, NavigateRequested):
            viewer.enqueue(("navigate", event))
        elif isinstance(event, ChatReceived):
            viewer.enqueue(("chat", event))
        elif isinstance(event, ClipboardReceived):
            viewer.clipboard(event)
        elif isinstance(event, ModeChanged):
            viewer.mode_changed(event.mode, event.previous)
        elif isinstance(event, Resized):
            viewer.resize(event.viewport)
        elif isinstance(event, VideoOpened):
            self.video.add(key)
            viewer.video_changed()
        elif isinstance(event, VideoClosed):
            self.video.discard(key)
            viewer.video_changed()
        elif isinstance(event, SessionClosed):
            self.video.discard(key)
            self._drop_viewer(key)

    def _drop_viewer(self, key: str) -> None:
        viewer = self.viewers.pop(key, None)
        if viewer is not None:
            self.hub.viewers -= 1
            viewer.close()

    # ------------------------------------------------------------ browser

    async def screen_for(self, viewport: tuple[int, int]) -> Screen:
        if self.config.browser_context == "shared":
            return await self.hub.shared_screen(viewport)
        async with self._context_lock:
            if self.closed:
                raise ScreenClosed("the connection is closed")
            if self.context is None:
                self.context = await self.hub.browser.new_context(
                    viewport, GraphicalHub._binding(self._screens)
                )
        screen = Screen(
            self.config,
            self.context,
            viewport,
            clipboard=self.hub.browser,
            owns_context=False,
            owner=self,
        )
        try:
            await screen.start()
        except BaseException:
            await screen.close()
            raise
        return screen

    def _screens(self) -> list[Screen | None]:
        return [v.screen for v in self.viewers.values()]

    async def writable(self) -> None:
        """Until the transport has sent what it was given: video goes out only
        into an empty buffer, so a slow client always gets the newest frame."""
        session = self.session
        if not self._unsent_limited:
            self._unsent_limited = True
            _limit_unsent(session)
        while True:
            if session.writing_paused:
                await session.wait_writable()
            if not session.is_open:
                raise ScreenClosed("the connection is closed")
            if not session.write_buffer_size():
                return
            await asyncio.sleep(0.004)

    async def close(self) -> None:
        """Close every session and the connection's context. Cancellation-proof:
        the daemon's handler awaits this in a `finally` and is itself cancelled
        when its session ends, but the context must still close."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        self.closed = True
        for key in list(self.viewers):
            self._drop_viewer(key)
        if self.clipboard_owner is self:
            self.hub.browser.forget(self)
        context, self.context = self.context, None
        if context is not None:
            try:
                await context.close()
            except Exception as exc:
                log.debug("closing the context: %r", exc)
        self.hub.services.discard(self)


class Viewer:
    """One graphical session: a person watching and driving a screen."""

    def __init__(self, service: GraphicalService, key: str, hello: HandshakeDone) -> None:
        self.service = service
        self.server = service.server
        self.config = service.config
        self.key = key
        self.capabilities = frozenset(hello.capabilities)
        self.mode: str = hello.mode
        self.viewport = (hello.viewport.width, hello.viewport.height)
        self.screen: Screen | None = None
        self.closed = False
        self.client_clipboard: str | None = None
        self._early: list[tuple[str, Any]] = []
        self._commands: deque[tuple[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._slot: FrameSlot | None = None
        self._video_task: asyncio.Task[None] | None = None
        self._screen_ready = asyncio.Event()
        self._resize_to: tuple[int, int] | None = None
        self._media: Any = None  # this screen on the connection's WebRTC video track
        self.label = f"{service.session.transport_info.get('peername')} {key or '#1'}"

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def start(self) -> None:
        self._spawn(self._open_screen())
        self._spawn(self._run_commands())

    async def _open_screen(self) -> None:
        try:
            screen = await self.service.screen_for(self.viewport)
        except (BrowserUnavailable, ScreenClosed) as exc:
            self.fail(str(exc))
            return
        except Exception as exc:
            log.exception("graphical session %s: the agent's page did not open", self.label)
            self.fail(f"the agent's page did not open: {exc}")
            return
        if self.closed:
            if self.config.browser_context != "shared":
                await screen.close()
            return
        self.screen = screen
        if self._resize_to is not None:  # a RESIZE came while the page was opening
            screen.resize(*self._resize_to)
            self._resize_to = None
        elif screen.viewport != self.viewport:  # a shared screen keeps its size
            self.viewport = screen.viewport
            self.screen_viewport(*screen.viewport)
        screen.attach(self)
        for kind, item in self._early:
            if kind == "paste":
                screen.submit_paste(item)
            else:
                screen.submit(item)
        self._early.clear()
        self._screen_ready.set()
        self.video_changed()
        if self.service.hub.webrtc is not None:
            self._media = self.service.hub.webrtc.feed(self.service.session, screen)
        log.info("graphical session %s: %dx%d", self.label, *self.viewport)

    def fail(self, reason: str) -> None:
        log.warning("graphical session %s refused: %s", self.label, reason)
        self._answer_queued(reason)
        self.service.call(
            self.server.send_notification,
            reason,
            type="error",
            code=ErrorCode.INTERNAL,
            session=self.key,
        )
        self.service.call(self.server.close_session, self.key, reason[:120])
        self.service._drop_viewer(self.key)

    def _answer_queued(self, reason: str) -> None:
        """COMMANDs that will never run still get their one final NOTIFICATION."""
        for kind, event in self._commands:
            if kind == "command":
                self.service.call(
                    self.server.reply,
                    event,
                    False,
                    f"{event.action}: {reason}",
                    code=ErrorCode.INTERNAL,
                )
        self._commands.clear()

    # ------------------------------------------------------------ input

    def input(self, message: Any) -> None:
        if self.screen is None:
            if len(self._early) < 1024:
                self._early.append(("input", message))
            return
        self.screen.submit(message)

    def paste(self, text: str) -> None:
        if self.screen is None:
            self._early.append(("paste", text))
            return
        self.screen.submit_paste(text)

    def mode_changed(self, mode: str, previous: str) -> None:
        self.mode = mode
        if previous == "interact" and mode != "interact" and self.screen is not None:
            self.screen.release_input()

    def resize(self, viewport: Viewport) -> None:
        size = self.service.hub.clamp(viewport)
        if self.screen is not None:
            self.screen.resize(*size)
        else:
            self._resize_to = size

    # ------------------------------------------------------------ commands

    def enqueue(self, item: tuple[str, Any]) -> None:
        if len(self._commands) >= MAX_QUEUED_COMMANDS:
            kind, event = item
            if kind == "command":
                self.service.call(
                    self.server.reply,
                    event,
                    False,
                    f"{event.action}: too many COMMANDs queued",
                    code=ErrorCode.TOO_LARGE,
                )
            return
        self._commands.append(item)
        self._wake.set()

    async def _run_commands(self) -> None:
        while not self.closed:
            if not self._commands:
                self._wake.clear()
                await self._wake.wait()
                continue
            kind, event = self._commands.popleft()
            try:
                await self._screen_ready.wait()
                if self.closed or self.screen is None:
                    break
                if kind == "command":
                    await self._command(event)
                elif kind == "navigate":
                    await self._navigate(event)
                else:
                    await self._chat(event.text)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("graphical session %s: %s failed", self.label, kind)
                if kind == "command":
                    self.service.call(self.server.reply, event, False, "internal error")
        self._answer_queued("the session ended")

    async def _command(self, event: CommandReceived) -> None:
        assert self.screen is not None
        outcome = await run_command(self.screen, event.action, event.args, self.config)
        self.service.call(
            self.server.reply,
            event,
            outcome.ok,
            outcome.text,
            data=outcome.data,
            code=outcome.code,
        )

    async def _navigate(self, event: NavigateRequested) -> None:
        """NAVIGATE: success shows in STATE; only a failure is a NOTIFICATION."""
        assert self.screen is not None
        if event.new_tab:
            try:
                with self.screen.busy("browsing"):
                    await self.screen.open_tab(event.url)
                return
            except Exception as exc:
                outcome = Outcome(False, f"navigate: {_first_line(exc)}", code=ErrorCode.INTERNAL)
        else:
            outcome = await run_command(self.screen, "navigate", {"url": event.url}, self.config)
        if not outcome.ok:
            self.service.call(
                self.server.send_notification,
                outcome.text,
                type="error",
                code=outcome.code,
                session=self.key,
            )

    async def _chat(self, text: str) -> None:
        """The built-in agent: a chat is read as a plain-language command
        (until the voice agent replaces it) and answered in the chat."""
        screen = self.screen
        assert screen is not None
        for viewer in list(screen.viewers):
            if viewer is not self and isinstance(viewer, Viewer):
                viewer.screen_chat("user", text)
        if self.mode == "view":
            answer = "I only watch in view mode: switch to voice or interact and ask me again."
        else:
            try:
                interpret(text, self.config)
            except CommandFailed as exc:
                answer = exc.text
            else:
                outcome = await run_command(screen, "natural", {"text": text}, self.config)
                answer = ("Done: " if outcome.ok else "Sorry, ") + outcome.text.removeprefix(
                    "natural: "
                )
        for viewer in list(screen.viewers):
            if isinstance(viewer, Viewer):
                viewer.screen_chat("agent", answer)

    # ------------------------------------------------------------ clipboard

    def clipboard(self, event: ClipboardReceived) -> None:
        limit = self.config.clipboard_limit
        if event.direction == "push":
            text = event.text or ""
            self.client_clipboard = text if len(text.encode()) <= limit else None
            return
        if event.direction == "set":
            text = event.text or ""
            size = len(text.encode())
            if size > limit:
                self.service.call(
                    self.server.send_notification,
                    f"CLIPBOARD set: {size} bytes is more than the {limit}-byte limit",
                    type="error",
                    code=ErrorCode.TOO_LARGE,
                    session=self.key,
                )
                return
            self._spawn(self._clipboard_set(text))
        else:
            self._spawn(self._clipboard_get())

    async def _clipboard_set(self, text: str) -> None:
        try:
            await self.service.hub.browser.write_clipboard(text, self.service.clipboard_owner)
        except Exception as exc:
            self.service.call(
                self.server.send_notification,
                f"CLIPBOARD set failed: {_first_line(exc)}",
                type="error",
                code=ErrorCode.INTERNAL,
                session=self.key,
            )

    async def _clipboard_get(self) -> None:
        try:
            text = await self.service.hub.browser.read_clipboard(self.service.clipboard_owner)
        except Exception as exc:
            self.service.call(
                self.server.send_notification,
                f"CLIPBOARD get failed: {_first_line(exc)}",
                type="error",
                code=ErrorCode.INTERNAL,
                session=self.key,
            )
            return
        self.screen_clipboard(text)

    # ------------------------------------------------------------ from the screen

    def screen_state(self, state: PageState) -> None:
        self.service.call(
            self.server.send_state,
            State(
                state.agent,
                state.url or None,
                state.title,
                state.loading,
                BrowserState(state.can_go_back, state.can_go_forward),
            ),
            session=self.key,
        )

    def screen_cursor(self, kind: str, x: int, y: int) -> None:
        self.service.call(self.server.send_cursor, kind, x, y, session=self.key)

    def screen_viewport(self, width: int, height: int) -> None:
        self.viewport = (width, height)
        self.service.call(self.server.set_viewport, Viewport(width, height), session=self.key)

    def screen_clipboard(self, text: str) -> None:
        if "clipboard" not in self.capabilities:
            return
        size = len(text.encode())
        if size > self.config.clipboard_limit:
            self.service.call(
                self.server.send_notification,
                f"the agent's clipboard holds {size} bytes, more than the "
                f"{self.config.clipboard_limit}-byte limit: not sent",
                type="warning",
                session=self.key,
            )
            return
        self.service.call(self.server.send_clipboard, text, session=self.key)

    def screen_chat(self, role: str, text: str) -> None:
        self.service.call(self.server.send_chat, text, role=role, session=self.key)

    # ------------------------------------------------------------ video

    def video_changed(self) -> None:
        want = self.key in self.service.video and self.screen is not None and not self.closed
        if want and self._video_task is None:
            self._video_task = self._spawn(self._send_video())
        elif not want and self._video_task is not None:
            self._video_task.cancel()
            self._video_task = None

    async def _send_video(self) -> None:
        """Newest frame first, at most VIDEO_WINDOW frames the client has not
        yet received: each frame is followed by an OpenMux PING, and the next
        frame waits while VIDEO_WINDOW PONGs are outstanding. A PONG comes back
        once the client has read everything before it, so frames never pile
        up in the kernel's or the browser's buffers, where newest-frame-wins
        could not reach them: the lag stays about one round trip."""
        screen = self.screen
        assert screen is not None
        session = self.service.session
        slot = FrameSlot()
        self._slot = slot
        screen.watch(slot)
        inflight: deque[asyncio.Future[Any]] = deque()
        try:
            while await slot.wait():
                await self.service.writable()
                while len(inflight) >= VIDEO_WINDOW:
                    await inflight.popleft()
                frame = slot.take()
                if frame is None:
                    continue
                if not self.service.call(self.server.send_video_frame, frame, session=self.key):
                    return
                pong = asyncio.ensure_future(session.ping())
                pong.add_done_callback(_retrieve)
                inflight.append(pong)
        except (ScreenClosed, SessionClosedError):
            return
        finally:
            for waiting in inflight:
                waiting.cancel()
            screen.unwatch(slot)
            self._slot = None

    # ------------------------------------------------------------ end

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._wake.set()
        self._screen_ready.set()
        screen, self.screen = self.screen, None
        if self._video_task is not None:
            self._video_task.cancel()
            self._video_task = None
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        if screen is not None:
            if self._media is not None:
                self.service.hub.webrtc.unfeed(self._media)
                self._media = None
            screen.detach(self)
            if self.config.browser_context == "shared":
                screen.release_input()
            else:
                self.service.hub.spawn(screen.close())


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # a PONG that never came: the session is over


def _limit_unsent(session: Session) -> None:
    """TCP_NOTSENT_LOWAT on the connection's socket (best effort): without it
    Linux may queue megabytes for a slow reader, seconds of stale video."""
    sink = session.sink
    transport = getattr(getattr(sink, "ws", None), "transport", None) or getattr(
        sink, "transport", None
    )
    sock = transport.get_extra_info("socket") if transport is not None else None
    option = getattr(socket, "TCP_NOTSENT_LOWAT", 25)
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, option, UNSENT_LIMIT)
    except OSError as exc:
        log.debug("TCP_NOTSENT_LOWAT: %s", exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
