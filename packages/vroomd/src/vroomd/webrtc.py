"""VROOM-Graphical over WebRTC in vroomd: signaling on the WebSocket port, media per peer.

A person's page reaches vroomd at one origin (`http://host:port/`): the page,
the WebSocket path `/omux/vroom` and the WebRTC signaling `POST
/omux/vroom/offer` share that port (openmux.aio's `webrtc=True` on a `ws://`
listener), so the page's CSP (`connect-src 'self'`) holds and the fallback
is the same URL with another scheme.

Each offer gets one `RTCPeerConnection` carrying the OpenMux DataChannels
(openmux.aio.webrtc) and a `MediaPeer` (vroomd.media): the agent's screen,
its voice, the person's microphone. `prepare()` runs before the offer is
applied, checks the token the way the WebSocket path does (`?token=` in the
signaling URL or `Authorization: Bearer`), and leaves the `MediaPeer` in
`session.transport_info["media"]` for the graphical service.
"""

from __future__ import annotations

import argparse
import dataclasses
import hmac
import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .media import LevelMeter, MediaConfig, MediaPeer, VoiceFactory

log = logging.getLogger("vroomd.webrtc")


class OfferRefused(Exception):
    """The offer is not allowed (bad or missing token, foreign origin): HTTP 401/403."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class WebRTCConfig:
    enabled: bool = True
    media: MediaConfig = field(default_factory=MediaConfig)
    voice: VoiceFactory | None = LevelMeter
    """One voice pipeline per peer connection (the fake meter by default:
    the real STT -> agent -> TTS pipeline needs cloud services)."""
    ice_hosts: list[str] | None = None
    """Addresses ICE gathers on; None: the listen address if it is a
    specific one, aioice's choice (every address but loopback) for 0.0.0.0."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    fps = MediaConfig().fps
    group = parser.add_argument_group(
        "WebRTC media",
        "A person's page connects over WebRTC first (the agent's screen as H264 video, "
        "its voice, the microphone) and falls back to the WebSocket JPEG path.",
    )
    group.add_argument(
        "--no-webrtc",
        action="store_true",
        help="no WebRTC signaling on ws:// listeners: pages use the WebSocket path only",
    )
    group.add_argument(
        "--video-fps",
        metavar="FPS",
        type=float,
        default=fps,
        help="most video frames per second sent to a WebRTC client, 1..120; a faster "
        f"screen has frames dropped, never queued (default {fps:g})",
    )
    group.add_argument(
        "--playout-delay",
        metavar="MIN,MAX|browser",
        default="0,0",
        help="milliseconds the person's browser may hold a video frame before showing it "
        "(the playout-delay RTP extension); 0,0 (default) shows each frame as soon as it "
        "decodes, `browser` leaves the browser's jitter buffer in charge",
    )


def config_from_args(args: argparse.Namespace) -> WebRTCConfig:
    """The media options of the command line (ValueError: a one-line message)."""
    delay: tuple[int, int] | None = None
    if args.playout_delay != "browser":
        try:
            low, high = (int(v) for v in args.playout_delay.split(","))
        except ValueError:
            raise ValueError(
                f"--playout-delay {args.playout_delay!r}: give MIN,MAX in ms or `browser`"
            ) from None
        delay = (low, high)
    try:
        defaults = MediaConfig()
        media = dataclasses.replace(
            defaults,
            fps=args.video_fps,
            idle_fps=min(defaults.idle_fps, args.video_fps),
            playout_delay=delay,
        )
    except ValueError as exc:
        raise ValueError(f"--video-fps/--playout-delay: {exc}") from None
    return WebRTCConfig(enabled=not args.no_webrtc, media=media)


def ice_hosts_for(host: str) -> list[str] | None:
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return None if address.is_unspecified else [str(address)]


class WebRTCService:
    """The daemon's WebRTC side: shared-port listeners and the per-peer hook."""

    def __init__(self, config: WebRTCConfig, token: str | None) -> None:
        self.config = config
        self.token = token
        self.peers: set[MediaPeer] = set()

    # ------------------------------------------------------------ signaling hook

    async def prepare(self, pc: Any, session: Any, request: Any) -> None:
        """openmux.aio.webrtc's `peer_connection` hook: auth, then media on `pc`."""
        self.check(request)
        session.connection.transport_authenticated = True
        voice = self.config.voice() if self.config.voice is not None else None
        media = MediaPeer(pc, self.config.media, voice=voice)
        self.peers.add(media)
        media.closed.add_done_callback(lambda _: self.peers.discard(media))
        session.transport_info["media"] = media
        await media.start()

    def check(self, request: Any) -> None:
        """The WebSocket path's rules, for the signaling request."""
        headers = request.headers
        if self.token is None:
            origin, host = headers.get("origin"), headers.get("host")
            if origin and origin != "null" and urlsplit(origin).netloc != host:
                raise OfferRefused(403, f"a page from {origin} may not connect here")
            return
        given = request.bearer()
        if not given:
            given = parse_qs(request.query or "").get("token", [""])[-1]
        if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
            raise OfferRefused(401, "authentication required: give the token")

    # ------------------------------------------------------------ listening

    def serve_options(self, url: str) -> dict[str, Any]:
        """openmux.aio.serve keywords that add WebRTC to a `ws(s)://` listener, on its port."""
        if not self.config.enabled or not url.startswith(("ws://", "wss://")):
            return {}
        hosts = self.config.ice_hosts
        if hosts is None:
            hosts = ice_hosts_for(urlsplit(url).hostname or "")
        return {"webrtc": True, "peer_connection": self.prepare, "ice_hosts": hosts}

    # ------------------------------------------------------------ the screen

    def feed(self, session: Any, screen: Any) -> Any:
        """Show `screen` on the connection's video track; a token for `unfeed()`, or None.

        One PeerConnection has one video track: the first graphical session
        on the connection gets it (further `#N` sessions see no video).
        """
        media = session.transport_info.get("media")
        if not isinstance(media, MediaPeer) or media.closed.done():
            return None
        if getattr(media, "screen_slot", None) is not None:
            return None
        from .graphical.screencast import FrameSlot

        slot = FrameSlot()
        media.screen_slot = slot  # type: ignore[attr-defined]
        screen.watch(slot)
        media.video.set_source(slot)
        return (media, screen, slot)

    @staticmethod
    def unfeed(token: Any) -> None:
        if token is None:
            return
        media, screen, slot = token
        media.screen_slot = None
        media.video.set_source(media.frames)  # the track outlives the session
        screen.unwatch(slot)
