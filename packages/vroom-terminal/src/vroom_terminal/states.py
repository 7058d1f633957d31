"""The §3 state machine as data: which message each side accepts in which state.

A state names the phase a session is in, the same on both ends (modulo
messages in flight):

| state | the session ... |
|---|---|
| DISCONNECTED | has no control channel (before it opens, after it closes) |
| CONTROL_OPEN | has its control channel; HELLO not yet exchanged |
| HELLO_EXCHANGE | exchanged HELLOs (encoding agreed); the OFFER is next |
| CAPABILITY_NEGOTIATION | has an OFFER out, the SELECT is next |
| AUTHENTICATING | got a SELECT with `auth.required: true` |
| PTY_REQUEST | is authenticated (or needs no auth): SET_ENV / PTY_REQUEST |
| PTY_ALLOCATED | has a PTY (PTY_RESPONSE ok): pty channel, SHELL/EXEC |
| SESSION_ACTIVE | runs a program (SHELL/EXEC accepted) and its pty channel is open |
| CLOSING | is ending (EXIT_STATUS, refusal or close), channels closing |

The tables are keyed by (state, message type) and name the handler; every
pair that is absent is out of state: ERROR 409, state unchanged. A few
handlers have a guard checked before decoding (a PTY_REQUEST while one is
pending, SHELL after the program started), which is also 409, so that the
state rule wins over every other (House §6.11).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from .codec import MessageType as M
from .ptywire import PtyType as P


class State(enum.Enum):
    DISCONNECTED = "Disconnected"
    CONTROL_OPEN = "ControlOpen"
    HELLO_EXCHANGE = "HelloExchange"
    CAPABILITY_NEGOTIATION = "CapabilityNegotiation"
    AUTHENTICATING = "Authenticating"
    PTY_REQUEST = "PTYRequest"
    PTY_ALLOCATED = "PTYAllocated"
    SESSION_ACTIVE = "SessionActive"
    CLOSING = "Closing"


S = State
_LIVE = tuple(s for s in State if s is not S.DISCONNECTED)

SERVER_TABLE: Mapping[tuple[State, M], str] = MappingProxyType({
    (S.CONTROL_OPEN, M.HELLO): "hello",
    (S.HELLO_EXCHANGE, M.CAPABILITY_OFFER): "offer",
    (S.AUTHENTICATING, M.AUTH_REQUEST): "auth_request",
    (S.PTY_REQUEST, M.SET_ENV): "set_env",
    (S.PTY_REQUEST, M.PTY_REQUEST): "pty_request",  # guard: none pending
    (S.PTY_ALLOCATED, M.SET_ENV): "set_env",  # guard: program not started
    (S.PTY_ALLOCATED, M.SHELL_REQUEST): "shell",  # guard: program not started
    (S.PTY_ALLOCATED, M.EXEC_REQUEST): "exec",  # guard: program not started
    (S.PTY_ALLOCATED, M.WINDOW_RESIZE): "resize",
    (S.PTY_ALLOCATED, M.SIGNAL): "signal",
    (S.SESSION_ACTIVE, M.WINDOW_RESIZE): "resize",
    (S.SESSION_ACTIVE, M.SIGNAL): "signal",
    # They may cross EXIT_STATUS in flight: accepted and dropped, never an error.
    (S.CLOSING, M.WINDOW_RESIZE): "drop",
    (S.CLOSING, M.SIGNAL): "drop",
    **{(s, M.ERROR): "error" for s in _LIVE},
})  # fmt: skip

CLIENT_TABLE: Mapping[tuple[State, M], str] = MappingProxyType({
    (S.CONTROL_OPEN, M.HELLO): "hello",
    (S.CAPABILITY_NEGOTIATION, M.CAPABILITY_SELECT): "select",
    (S.AUTHENTICATING, M.AUTH_RESPONSE): "auth_response",  # guard: a request is out
    (S.PTY_REQUEST, M.PTY_RESPONSE): "pty_response",  # guard: a request is out
    (S.PTY_ALLOCATED, M.EXIT_STATUS): "exit_status",  # guard: program started
    (S.SESSION_ACTIVE, M.EXIT_STATUS): "exit_status",
    **{(s, M.ERROR): "error" for s in _LIVE},
})  # fmt: skip

SERVER_PTY_TABLE: Mapping[tuple[State, P], str] = MappingProxyType({
    **{(s, t): name for s in (S.PTY_ALLOCATED, S.SESSION_ACTIVE)
       for t, name in ((P.DATA, "input"), (P.ZSTD_DATA, "input"), (P.WINDOW_ACK, "ack"),
                       (P.EOF, "eof"))},
    **{(S.CLOSING, t): "drop" for t in P},
})  # fmt: skip

CLIENT_PTY_TABLE: Mapping[tuple[State, P], str] = MappingProxyType({
    **{(s, t): "output" for s in (S.PTY_ALLOCATED, S.SESSION_ACTIVE, S.CLOSING)
       for t in (P.DATA, P.ZSTD_DATA)},
})  # fmt: skip

__all__ = ["CLIENT_PTY_TABLE", "CLIENT_TABLE", "SERVER_PTY_TABLE", "SERVER_TABLE", "State"]
