"""Signal numbers on the wire: the Linux numbering, whatever the peer's OS.

SIGNAL carries one byte. Numbers differ between systems (SIGUSR1 is 10 on
Linux, 30 on macOS), so the byte is always read with the Linux table below
(House, VROOM-TERMINAL.md §6.3), and a client on another OS converts by
name. EXIT_STATUS carries the name without `SIG`, as SSH's exit-signal does.
"""

from __future__ import annotations

from types import MappingProxyType

_CLASSIC = (
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1",
    "SEGV", "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP",
    "TTIN", "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR",
    "SYS",
)  # fmt: skip

SIGRTMIN = 34
SIGRTMAX = 64


def _build() -> dict[int, str]:
    table = {number: name for number, name in enumerate(_CLASSIC, start=1)}
    for number in range(SIGRTMIN, SIGRTMAX + 1):
        if number == SIGRTMIN:
            table[number] = "RTMIN"
        elif number == SIGRTMAX:
            table[number] = "RTMAX"
        elif number - SIGRTMIN <= (SIGRTMAX - SIGRTMIN) // 2:
            table[number] = f"RTMIN+{number - SIGRTMIN}"
        else:
            table[number] = f"RTMAX-{SIGRTMAX - number}"
    return table


SIGNAL_NAMES = MappingProxyType(_build())
"""Linux signal number → name without `SIG`. 32 and 33 are glibc-internal and absent."""

_ALIASES = {"IOT": 6, "POLL": 29, "CLD": 17, "UNUSED": 31}

SIGNAL_NUMBERS = MappingProxyType(
    {**{name: number for number, name in SIGNAL_NAMES.items()}, **_ALIASES}
)
"""Name (without `SIG`, aliases included) → Linux number."""


def signal_name(number: int) -> str | None:
    """The name of a Linux signal number, None if it is not one."""
    return SIGNAL_NAMES.get(number)


def signal_number(name: str) -> int | None:
    """The Linux number of `TERM`, `SIGTERM` or `RTMIN+3`; None if unknown."""
    key = name.upper()
    if key.startswith("SIG"):
        key = key[3:]
    return SIGNAL_NUMBERS.get(key)


__all__ = ["SIGNAL_NAMES", "SIGNAL_NUMBERS", "SIGRTMAX", "SIGRTMIN", "signal_name", "signal_number"]
