"""`vroom term`'s busy-polling for the echo of a keystroke (termloop's
docstring says why): the estimate that decides it, the setting, and typing
end to end with it on and off. Nothing here times anything: whether the
spin pays is bench/terminal_latency.py's business."""

from __future__ import annotations

import pexpect
import pytest
from test_polled_term import PROMPT, vroom_env
from vroom_terminal.termloop import BUSY_POLL, EchoClock, busy_poll_from_env
from vterm_support import VROOM, VroomdProcess


def test_spins_until_echoes_take_longer_than_the_budget() -> None:
    clock = EchoClock(0.0005)
    assert clock.spin_for() == 0.0005  # nothing learnt yet: try
    for _ in range(20):
        clock.sample(0.0002)  # loopback
    assert clock.spin_for() == 0.0005
    for _ in range(40):
        clock.sample(0.030)  # 30 ms away: a spin would only burn CPU
    assert clock.spin_for() == 0.0
    for _ in range(40):
        clock.sample(0.0002)  # back (capped samples let it recover)
    assert clock.spin_for() == 0.0005


def test_one_unanswered_key_does_not_stop_the_spin_for_long() -> None:
    clock = EchoClock(0.0005)
    clock.sample(60.0)  # a password typed a minute ago: capped at 10 ms
    assert clock.estimate <= 0.01 / 8 + 1e-12
    for _ in range(30):
        clock.sample(0.0002)
    assert clock.spin_for() == 0.0005


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, BUSY_POLL), ("0", 0.0), ("250", 0.00025), ("-3", 0.0), ("junk", BUSY_POLL),
     ("1e9", 0.01)],
)  # fmt: skip
def test_setting(value: str | None, seconds: float) -> None:
    environ = {} if value is None else {"VROOM_BUSY_POLL_US": value}
    assert busy_poll_from_env(environ) == pytest.approx(seconds)


@pytest.mark.parametrize("busy_poll", ["500", "0"])
@pytest.mark.parametrize("scheme", ["tcp", "ws"])
def test_typing_key_by_key(vroomd: VroomdProcess, scheme: str, busy_poll: str) -> None:
    """Every key reaches `dd` and its echo comes back, one at a time, with
    the spin on and off."""
    env = vroom_env(vroomd, VROOM_BUSY_POLL_US=busy_poll)
    child = pexpect.spawn(VROOM, ["term", vroomd.url(scheme)], env=env, timeout=30,
                          dimensions=(24, 200))  # fmt: skip
    try:
        child.expect(PROMPT)
        child.send("stty raw -echo; dd bs=1 count=12 status=none; stty sane; echo END-OF-KEYS\r")
        child.expect("END-OF-KEYS\r\n")  # the command line's echo
        for key in "hello, world":
            child.send(key)
            child.expect_exact(key)
        child.expect("END-OF-KEYS")  # dd's 12 keys are done
        child.expect(PROMPT)
        child.send("exit 0\r")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
