"""Defensive decoding of CBOR and JSON message bodies, shared by the protocols.

VROOM-Terminal and VROOM-Graphical both carry control bodies as CBOR or JSON
from an untrusted peer. This module holds the one implementation of the
checks that must happen before (CBOR) or around (JSON) the real decoder:

- `scan_cbor` walks CBOR bytes *before* cbor2 sees them, because cbor2 trusts
  declared lengths (a 9-byte "array of 2^36 items"), recurses without a
  bound and honours tags (dates, decimals, and the shared-reference tags,
  which build cyclic objects). After the scan cbor2 can only build dicts,
  lists, str, bytes, int, float, bool and None, no deeper than asked.
- `loads_json` is `json.loads` made strict: UTF-8 only (`json.loads` would
  sniff UTF-16/32 from bytes), no NaN/Infinity, bounded nesting, and a
  hostile depth is an error rather than a RecursionError.

It stays stdlib-only (openmux core depends on nothing); the protocol packages
call cbor2 themselves and map `BodyError` to their own error tree and wire
code, so one rule set serves both without either importing the other.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["BodyError", "loads_json", "scan_cbor"]


class BodyError(ValueError):
    """A body that is malformed or leaves the data model.

    Deliberately outside openmux's own error tree: a bad body is the
    application protocol's business, so each protocol re-raises it as its
    own DecodeError carrying its own wire code.
    """


_ARRAY, _MAP, _BYTES_CHUNKS, _TEXT_CHUNKS = 0, 1, 2, 3  # chunk kinds equal their major type
_SIMPLE_OK = frozenset({20, 21, 22, 25, 26, 27})  # false, true, null, half/single/double float


def _argument(data: bytes, pos: int, info: int) -> tuple[int, int]:
    """The head's argument (value or length) and the position after it."""
    if info < 24:
        return info, pos
    size = 1 << (info - 24)  # 24..27 -> 1, 2, 4, 8 bytes
    if pos + size > len(data):
        raise BodyError("CBOR item header is truncated")
    return int.from_bytes(data[pos : pos + size], "big"), pos + size


def scan_cbor(
    data: bytes, max_depth: int, *, integer_keys: bool = False, count_empty: bool = True
) -> None:
    """Check that `data` is exactly one well-formed CBOR item in the data model.

    Iterative (no recursion to exhaust) and allocation-free: every declared
    length is compared with the bytes actually left before anything is
    built, and the only state is one small entry per open container.
    Refused: tags, simple values other than false/true/null and floats,
    reserved additional information, indefinite integers, map keys other
    than text (or integers, with `integer_keys`), trailing bytes, and more
    than `max_depth` open containers (an indefinite-length string counts
    while open). `count_empty=False` lets a definite empty container sit one
    level deeper, since it opens nothing a decoder has to descend into.
    """
    n = len(data)
    pos = 0
    # Open containers: [kind, items left (-1 = indefinite), items seen]
    stack: list[list[int]] = []
    key_majors = (0, 1, 3) if integer_keys else (3,)
    while True:
        if pos >= n:
            raise BodyError("CBOR is truncated")
        head = data[pos]
        pos += 1
        major, info = head >> 5, head & 0x1F
        top = stack[-1] if stack else None
        if head == 0xFF:
            if top is None or top[1] != -1 or (top[0] == _MAP and top[2] % 2):
                raise BodyError("unexpected CBOR break")
            stack.pop()
        else:
            if top is not None:
                if top[0] == _MAP and top[2] % 2 == 0 and major not in key_majors:
                    raise BodyError(
                        "CBOR map keys must be text or integers"
                        if integer_keys
                        else "CBOR map keys must be text strings"
                    )
                if top[0] in (_BYTES_CHUNKS, _TEXT_CHUNKS) and (major != top[0] or info == 31):
                    raise BodyError("bad chunk in an indefinite-length CBOR string")
            if info in (28, 29, 30):
                raise BodyError(f"reserved CBOR additional information {info}")
            if major == 6:
                raise BodyError("CBOR tags are not accepted")
            if info == 31:
                if major in (0, 1, 7):
                    raise BodyError("indefinite length on a CBOR type that has none")
                if len(stack) >= max_depth:
                    raise BodyError(f"CBOR nests deeper than {max_depth}")
                if top is not None:
                    top[2] += 1
                    if top[1] > 0:
                        top[1] -= 1
                stack.append([(_BYTES_CHUNKS, _TEXT_CHUNKS, _ARRAY, _MAP)[major - 2], -1, 0])
                continue
            value, pos = _argument(data, pos, info)
            if major in (2, 3):
                if value > n - pos:
                    raise BodyError("CBOR string is longer than the message")
                pos += value
            elif major in (4, 5):
                items = value * 2 if major == 5 else value
                if items > n - pos:
                    raise BodyError("CBOR container declares more items than the message holds")
                if (items or count_empty) and len(stack) >= max_depth:
                    raise BodyError(f"CBOR nests deeper than {max_depth}")
                if items:
                    if top is not None:
                        top[2] += 1
                        if top[1] > 0:
                            top[1] -= 1
                    stack.append([_ARRAY if major == 4 else _MAP, items, 0])
                    continue
            elif major == 7 and info not in _SIMPLE_OK:
                raise BodyError(
                    "only false, true, null and floats are accepted as CBOR simple values"
                )
            # A complete item: count it against its container.
            if top is not None:
                top[2] += 1
                if top[1] > 0:
                    top[1] -= 1
        # Close every definite container this item completed.
        while stack and stack[-1][1] == 0:
            stack.pop()
        if not stack:
            break
    if pos != n:
        raise BodyError(f"{n - pos} bytes after the CBOR item")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_json(data: bytes, max_depth: int | None, *, count_empty: bool = True) -> Any:
    """Strict `json.loads`: UTF-8, no NaN/Infinity, at most `max_depth` nested containers.

    `count_empty` has the meaning it has for `scan_cbor`, so a package gets
    the same depth rule whichever encoding its peer chose. `max_depth=None`
    leaves only the interpreter's recursion limit (turned into `BodyError`),
    which is what the OpenMux core relies on for channel-0 JSON.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BodyError("JSON is not valid UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BodyError("JSON nests too deeply") from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, over-long integers
        raise BodyError(f"invalid JSON: {exc}") from None
    if max_depth is not None:
        _check_depth(value, max_depth, count_empty)
    return value


def _check_depth(value: Any, max_depth: int, count_empty: bool) -> None:
    """Iterative, so the check cannot itself run out of stack."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if not children and not count_empty:
            continue
        if depth + 1 > max_depth:
            raise BodyError(f"JSON nests deeper than {max_depth}")
        stack.extend((child, depth + 1) for child in children)
