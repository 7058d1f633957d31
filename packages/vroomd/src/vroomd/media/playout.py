"""The playout-delay RTP header extension: the browser shows frames as soon as they decode.

A receiving browser holds every video frame in a jitter buffer and renders
it on a smoothed schedule, 40-60 ms on loopback: right for a film, too much
for a screen someone is typing into. libwebrtc's extension
`http://www.webrtc.org/experiments/rtp-hdrext/playout-delay` (3 bytes: the
minimum and the maximum delay, 12 bits each, in 10 ms units) lets the
sender bound that delay; min = max = 0 is the low-latency path of cloud
gaming: each frame is rendered as soon as it is decoded. Chromium offers
the extension; aiortc neither answers it nor writes it. `install()` does
both for one transceiver, through two aiortc internals:

- `RTCRtpTransceiver._headerExtensions`, the extensions aiortc puts in the
  answer (and hands the sender), which `setRemoteDescription()` sets to the
  ones both sides know: we add the offer's playout-delay entry to it right
  after that call, before `createAnswer()`.
- `RTCRtpSender._RTCRtpSender__rtp_header_extensions_map`, the object that
  writes each packet's extensions: ours (`PlayoutDelayMap`) adds the
  playout-delay element to what aiortc writes (mid, abs-send-time).

An offer without the extension (Firefox, another aiortc) leaves both alone.
"""

from __future__ import annotations

import logging
from typing import Any

from aiortc import RTCRtpHeaderExtensionParameters, RTCRtpTransceiver
from aiortc import sdp as aiortc_sdp
from aiortc.rtp import HeaderExtensionsMap, pack_header_extensions, unpack_header_extensions

log = logging.getLogger("vroomd.media")

URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
UNIT_MS = 10
MAX_MS = 0xFFF * UNIT_MS


def encode(min_ms: int, max_ms: int) -> bytes:
    """The extension's 3 bytes: min and max, 12 bits each, in 10 ms units."""
    if not 0 <= min_ms <= max_ms <= MAX_MS:
        raise ValueError(f"playout delay must satisfy 0 <= min <= max <= {MAX_MS} ms")
    low, high = min_ms // UNIT_MS, max_ms // UNIT_MS
    return bytes((low >> 4, ((low & 0xF) << 4) | (high >> 8), high & 0xFF))


def decode(value: bytes) -> tuple[int, int]:
    """(min_ms, max_ms) of an extension element's value."""
    if len(value) != 3:
        raise ValueError("a playout-delay element is 3 bytes")
    low = (value[0] << 4) | (value[1] >> 4)
    high = ((value[1] & 0xF) << 8) | value[2]
    return low * UNIT_MS, high * UNIT_MS


class PlayoutDelayMap(HeaderExtensionsMap):
    """aiortc's header-extension writer, plus the playout-delay element when negotiated."""

    def __init__(self, delay: tuple[int, int]) -> None:
        super().__init__()
        self.value = encode(*delay)
        self.id: int | None = None

    def configure(self, parameters: Any) -> None:
        super().configure(parameters)
        for ext in parameters.headerExtensions:
            if ext.uri == URI:
                self.id = ext.id

    def set(self, values: Any) -> tuple[int, bytes]:
        profile, data = super().set(values)
        if self.id is None:
            return profile, data
        elements = unpack_header_extensions(profile, data) if data else []
        elements.append((self.id, self.value))
        return pack_header_extensions(elements)


def offered_id(offer_sdp: str, mid: str | None) -> int | None:
    """The playout-delay extension's id in the offer's m-line `mid`, if it has one."""
    description = aiortc_sdp.SessionDescription.parse(offer_sdp)
    for media in description.media:
        if media.rtp.muxId == mid:
            for ext in media.rtp.headerExtensions:
                if ext.uri == URI:
                    return int(ext.id)
    return None


def install(pc: Any, transceiver: RTCRtpTransceiver, delay: tuple[int, int]) -> None:
    """Answer and write the playout-delay extension on `transceiver`'s video (see above).

    Call before the offer is applied: this wraps `pc.setRemoteDescription`
    (this one object's) and the sender's extension writer.
    """
    writer = PlayoutDelayMap(delay)
    transceiver.sender._RTCRtpSender__rtp_header_extensions_map = writer  # type: ignore[attr-defined]
    original = pc.setRemoteDescription

    async def set_remote_description(description: Any) -> None:
        await original(description)
        if description.type != "offer":
            return
        ext_id = offered_id(description.sdp, transceiver.mid)
        extensions = transceiver._headerExtensions
        if ext_id is not None and not any(e.uri == URI for e in extensions):
            extensions.append(RTCRtpHeaderExtensionParameters(id=ext_id, uri=URI))
            log.debug("playout delay %s ms negotiated (extension id %d)", delay, ext_id)

    pc.setRemoteDescription = set_remote_description
