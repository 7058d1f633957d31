"""Size limits of one terminal endpoint, passed to `TerminalServer`/`TerminalClient`.

Every limit is checked before the bytes it guards are decoded, so a peer can
never make us allocate more than a small multiple of what it actually sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from openmux._record import Record


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class Limits(Record):
    max_control_payload: int = 64 * 1024
    """Largest control TLV payload we decode; a bigger one is answered 413."""
    max_depth: int = 16
    """Deepest nesting of maps/arrays in a control payload (our schemas need 4)."""
    max_env: int = 256
    """Most names in one SET_ENV; more is answered 413."""
    max_argv: int = 4096
    """Most entries in EXEC_REQUEST `argv`; more is answered 413."""

    def __post_init__(self) -> None:
        if self.max_control_payload <= 0 or self.max_depth <= 0:
            raise ValueError("limits must be > 0")
        if self.max_env < 0 or self.max_argv <= 0:
            raise ValueError("max_env must be >= 0 and max_argv > 0")


DEFAULT_LIMITS = Limits()

__all__ = ["DEFAULT_LIMITS", "Limits"]
