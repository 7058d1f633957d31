"""Capability resolution, flow-control windows, signal table, channel names, env allow-list."""

from __future__ import annotations

import signal as pysignal
import sys

import pytest
from vroom_terminal import (
    SIGNAL_NAMES,
    AckWindow,
    AuthInfo,
    CapabilityOffer,
    CapabilitySelect,
    DecodeError,
    ExtensionsOffer,
    KittyKeyboardOffer,
    KittyOffer,
    LocalProtocolError,
    Role,
    SendWindow,
    ServerCapabilities,
    TerminalInfo,
    channel_policy,
    control_name,
    env_allowed,
    parse_name,
    pty_name,
    pty_spec,
    resolve,
    session_key,
    signal_name,
    signal_number,
)
from vroom_terminal.channels import check_session, control_spec

NOAUTH = AuthInfo(False)


def _level(supported: tuple[int, ...], preferred: int, server: tuple[int, ...]) -> int:
    offer = CapabilityOffer(kitty=KittyOffer(KittyKeyboardOffer(supported, preferred)))
    caps = ServerCapabilities(kitty_keyboard_levels=server)
    return resolve(offer, caps, NOAUTH).kitty.keyboard_level


def test_kitty_level_rules() -> None:
    assert _level((1, 2, 3), 3, (1, 2, 3)) == 3
    assert _level((1, 2, 3), 2, (1, 2, 3)) == 2  # <= the client's preferred
    assert _level((1, 3), 3, (1, 2)) == 1  # highest both support
    assert _level((2, 3), 3, (1,)) == 0  # nothing in common: off
    assert _level((1, 2, 3), 0, (1, 2, 3)) == 0  # the client prefers off
    assert _level((), 3, (1, 2, 3)) == 0


def test_booleans_anded_lists_in_client_order() -> None:
    offer = CapabilityOffer(
        terminal=TerminalInfo("xterm-kitty", "15.1", True),
        kitty=KittyOffer(graphics=True, sixel=True, synchronized_output=False),
        mouse=("xterm", "sgr", "sgr", "nope"),
        features=("progress_indicator", "bracketed_paste"),
        extensions=ExtensionsOffer(structured_keys=True, reconnect=True, flow_control=None),
    )
    caps = ServerCapabilities(sixel=False, mouse=("sgr", "xterm"), reconnect=True)
    sel = resolve(offer, caps, AuthInfo(True, ("token",)))
    assert sel.terminal == TerminalInfo("xterm-kitty", "15.1", True)  # echoed
    assert (sel.kitty.graphics, sel.kitty.sixel, sel.kitty.synchronized_output) == (
        True,
        False,
        False,
    )
    assert sel.mouse == ("xterm", "sgr")
    assert sel.features == ("progress_indicator", "bracketed_paste")
    assert sel.extensions.reconnect and not sel.extensions.structured_keys
    assert sel.extensions.flow_control is None
    assert sel.protocol_version == 1


def test_window_granted_within_bounds() -> None:
    def granted(offered: int, server_max: int) -> int | None:
        offer = CapabilityOffer(extensions=ExtensionsOffer(flow_control=offered))
        return resolve(
            offer, ServerCapabilities(max_window=server_max), NOAUTH
        ).extensions.flow_control

    assert granted(1 << 20, 4 << 20) == 1 << 20
    assert granted(8 << 20, 4 << 20) == 4 << 20
    assert granted(1, 4 << 20) == 1
    with pytest.raises(ValueError):
        ServerCapabilities(max_window=0)


def test_select_has_every_key() -> None:
    obj = resolve(CapabilityOffer(extensions=ExtensionsOffer(flow_control=None)),
                  ServerCapabilities(), NOAUTH).to_obj()  # fmt: skip
    assert obj == {
        "protocol_version": 1,
        "terminal": {"name": "", "unicode_version": "", "truecolor": False},
        "kitty": {
            "keyboard": {"level": 0},
            "graphics": False,
            "sixel": False,
            "synchronized_output": False,
        },
        "mouse": [],
        "features": [],
        "extensions": {
            "structured_keys": False,
            "reconnect": False,
            "zstd_compression": False,
            "flow_control": None,
        },
        "auth": {"required": False, "methods": []},
    }
    assert CapabilitySelect.from_obj(obj) == resolve(
        CapabilityOffer(extensions=ExtensionsOffer(flow_control=None)), ServerCapabilities(), NOAUTH
    )


def test_offer_omitted_keys_are_false_and_unknown_ignored() -> None:
    offer = CapabilityOffer.from_obj({"protocol_version": 1, "future": {"x": 1},
                                      "kitty": {"graphics": True, "new": 3}})  # fmt: skip
    assert offer == CapabilityOffer(kitty=KittyOffer(graphics=True),
                                    extensions=ExtensionsOffer(flow_control=None))  # fmt: skip
    with pytest.raises(DecodeError) as exc:
        CapabilityOffer.from_obj({"protocol_version": 2})
    assert exc.value.fatal and exc.value.code == 400


# ------------------------------------------------------------------ flow


def test_send_window() -> None:
    w = SendWindow(100)
    assert w.take(60) == 60 and w.take(60) == 40 and w.take(1) == 0
    assert w.available == 0
    assert w.on_ack(30) == 30 and w.available == 30
    assert w.on_ack(30) == 0
    with pytest.raises(DecodeError):
        w.on_ack(101)  # beyond what was sent
    with pytest.raises(DecodeError):
        w.on_ack(10)  # backwards
    assert w.acked == 30  # a malformed ack changes nothing
    unlimited = SendWindow(None)
    assert unlimited.available is None and unlimited.take(10**9) == 10**9
    with pytest.raises(ValueError):
        SendWindow(0)


def test_ack_window() -> None:
    w = AckWindow(1000, ack_every=128 * 1024)
    assert w.ack_every == 500  # never more than half the window
    assert w.on_data(1000) and not w.on_data(1)
    assert w.consume(400) is None
    assert w.consume(100) == 500
    assert w.flush() is None or w.acked == 500
    assert w.consume(10) is None and w.flush() == 510
    with pytest.raises(LocalProtocolError):
        w.consume(10_000)
    assert AckWindow(None).consume(0) is None
    assert AckWindow(1).ack_every == 1


# --------------------------------------------------------------- signals


def test_signal_table_is_linux() -> None:
    expected = {1: "HUP", 2: "INT", 3: "QUIT", 9: "KILL", 10: "USR1", 12: "USR2", 15: "TERM"}
    expected |= {17: "CHLD", 18: "CONT", 19: "STOP", 20: "TSTP", 28: "WINCH", 31: "SYS"}
    expected |= {34: "RTMIN", 35: "RTMIN+1", 49: "RTMIN+15", 50: "RTMAX-14", 64: "RTMAX"}
    for number, name in expected.items():
        assert SIGNAL_NAMES[number] == name
    assert 0 not in SIGNAL_NAMES and 32 not in SIGNAL_NAMES and 33 not in SIGNAL_NAMES
    assert signal_number("SIGTERM") == 15 and signal_number("term") == 15
    assert signal_number("IOT") == 6 and signal_number("POLL") == 29
    assert signal_number("NOPE") is None and signal_name(99) is None


@pytest.mark.skipif(sys.platform != "linux", reason="compares with the host's numbering")
def test_signal_table_matches_this_linux() -> None:
    for number, name in SIGNAL_NAMES.items():
        if "+" in name or "-" in name or name in ("RTMIN", "RTMAX", "STKFLT"):
            continue
        assert getattr(pysignal, "SIG" + name) == number
    assert pysignal.SIGRTMIN == 34 and pysignal.SIGRTMAX == 64


# -------------------------------------------------------------- channels


def test_channel_names() -> None:
    assert control_name() == "vroom.terminal.control"
    assert pty_name("#2") == "vroom.terminal.pty#2"
    assert session_key(1) == "" and session_key(7) == "#7"
    assert parse_name("vroom.terminal.pty#12") == (Role.PTY, "#12")
    assert parse_name("vroom.terminal.control") == (Role.CONTROL, "")
    for bad in ("vroom.terminal.pty#0", "vroom.terminal.pty#", "vroom.terminal.pty#01",
                "vroom.terminal.ptyx", "other", "vroom.terminal.pty#2#3"):  # fmt: skip
        assert parse_name(bad) is None
    with pytest.raises(ValueError):
        check_session("2")
    with pytest.raises(ValueError):
        session_key(0)


def test_channel_policy() -> None:
    assert channel_policy(control_spec("#3")) is None
    assert channel_policy(pty_spec()) == "defer"
    assert (
        channel_policy(control_spec().__class__("vroom.terminal.control", reliable=False)) == 1003
    )
    assert channel_policy(control_spec().__class__("video")) == 1003


def test_env_allow_list() -> None:
    allow = ("TERM", "LANG", "LC_*", "COLORTERM", "TZ")
    for ok in ("TERM", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "COLORTERM"):
        assert env_allowed(ok, allow)
    for bad in ("PATH", "LD_PRELOAD", "TERMINFO", "LC", "lang", "LC_X=Y", "", "1LC_", "LC_\x00"):
        assert not env_allowed(bad, allow)
