"""Credit-based flow control on a pty channel (House §6.1, §6.11).

The unit is a pty-channel payload byte as carried on the wire (DATA and
ZSTD_DATA payloads; the compressed size for ZSTD_DATA), so both ends count
without decompressing anything. The client acknowledges cumulatively with
WINDOW_ACK; the server never has more than `window` unacknowledged bytes in
flight, and tells the application how many it may send now so that vroomd
simply stops reading the PTY when the credit is 0 (the kernel then stops
the program: back-pressure all the way to the writer).
"""

from __future__ import annotations

from .errors import DecodeError, LocalProtocolError

DEFAULT_ACK_EVERY = 128 * 1024


class SendWindow:
    """Server side: credit for one pty channel. `window=None`: no flow control."""

    __slots__ = ("acked", "sent", "window")

    def __init__(self, window: int | None) -> None:
        if window is not None and window <= 0:
            raise ValueError("a credit window must be > 0")
        self.window = window
        self.sent = 0
        self.acked = 0

    @property
    def in_flight(self) -> int:
        return self.sent - self.acked

    @property
    def available(self) -> int | None:
        """Bytes that may be sent now; None when only the transport limits us."""
        if self.window is None:
            return None
        return self.window - self.in_flight

    def take(self, size: int) -> int:
        """Reserve up to `size` bytes of credit; returns how many were granted."""
        # `available` inline, no min(): this runs for every PTY read (a keystroke's echo).
        window = self.window
        if window is not None:
            available = window - self.sent + self.acked
            if size > available:
                size = available
        self.sent += size
        return size

    def on_ack(self, count: int) -> int:
        """Apply a cumulative WINDOW_ACK; returns the bytes newly acknowledged.

        A count beyond what was sent, or below an earlier one, is malformed
        (400, ignored, House §6.11).
        """
        if count > self.sent:
            raise DecodeError(f"WINDOW_ACK {count} is beyond the {self.sent} bytes sent")
        if count < self.acked:
            raise DecodeError(f"WINDOW_ACK {count} goes back from {self.acked}")
        newly = count - self.acked
        self.acked = count
        return newly


class AckWindow:
    """Client side: counts what arrived and what the application consumed,
    and says when to send a WINDOW_ACK.

    Acknowledging every `ack_every` consumed bytes (capped at half the window
    so the server can never stall on an ack we are still holding back)
    keeps WINDOW_ACKs rare without letting the window run dry.
    """

    __slots__ = ("ack_every", "acked", "consumed", "received", "window")

    def __init__(self, window: int | None, ack_every: int = DEFAULT_ACK_EVERY) -> None:
        if ack_every <= 0:
            raise ValueError("ack_every must be > 0")
        self.window = window
        self.ack_every = ack_every if window is None else max(1, min(ack_every, window // 2))
        self.received = 0
        self.consumed = 0
        self.acked = 0

    def on_data(self, size: int) -> bool:
        """Count `size` received bytes; False if the server overran its window."""
        self.received += size
        return self.window is None or self.received - self.acked <= self.window

    def consume(self, size: int) -> int | None:
        """The application consumed `size` more bytes; returns the cumulative
        count to send in a WINDOW_ACK now, or None."""
        if size < 0 or self.consumed + size > self.received:
            raise LocalProtocolError(
                f"cannot consume {size} bytes: {self.received - self.consumed} are unconsumed"
            )
        self.consumed += size
        if self.window is None or self.consumed - self.acked < self.ack_every:
            return None
        return self._ack()

    def flush(self) -> int | None:
        """Acknowledge everything consumed so far, if anything is pending."""
        if self.window is None or self.consumed == self.acked:
            return None
        return self._ack()

    def _ack(self) -> int:
        self.acked = self.consumed
        return self.acked


__all__ = ["DEFAULT_ACK_EVERY", "AckWindow", "SendWindow"]
