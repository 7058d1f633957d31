"""openmux.bodies: the CBOR pre-scan and strict JSON shared by both protocols."""

from __future__ import annotations

import json
import math
import struct
import tracemalloc
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openmux.bodies import BodyError, loads_json, scan_cbor

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPTIONS = st.fixed_dictionaries({"integer_keys": st.booleans(), "count_empty": st.booleans()})

# ------------------------------------------------------------------ unit: CBOR


@pytest.mark.parametrize(
    "value",
    [0, -1, 2**64 - 1, -(2**64), 1.5, True, False, None, "t", b"b", [], {}, {"a": [1, {"b": b""}]}],
)
def test_scan_accepts_the_data_model(value: object) -> None:
    scan_cbor(cbor2.dumps(value), 4)


@pytest.mark.parametrize(
    ("hex_", "match"),
    [
        ("", "truncated"),
        ("19ff", "header is truncated"),
        ("a1", "more items"),
        ("a16161", "truncated"),
        ("62", "longer than"),
        ("5b00000000ffffffff", "longer than the message"),
        ("9b00000000ffffffff", "more items"),
        ("bb000000007fffffff", "more items"),
        ("c074323031332d30332d32315432303a30343a30305a", "tags"),
        ("d81c81d81d00", "tags"),  # shareable / sharedref: cyclic objects
        ("df", "tags"),
        ("f7", "simple values"),  # undefined
        ("f0", "simple values"),
        ("f820", "simple values"),
        ("1c", "reserved"),
        ("ff", "break"),
        ("9fff00", "bytes after"),
        ("a0a0", "bytes after"),
        ("a1f600", "keys must be text strings"),
        ("a10102", "keys must be text strings"),
        ("1f", "indefinite length"),
        ("3f", "indefinite length"),
        ("5f6161ff", "chunk"),
        ("5f5f4100ffff", "chunk"),
        ("7f4161ff", "chunk"),
        ("bf6161ff", "break"),
        ("8201ff", "break"),
    ],
)
def test_scan_rejects(hex_: str, match: str) -> None:
    with pytest.raises(BodyError, match=match):
        scan_cbor(bytes.fromhex(hex_), 8)


def test_integer_keys_option() -> None:
    for data in (b"\xa1\x01\x02", b"\xa1\x20\x02", b"\xbf\x01\x02\xff"):
        scan_cbor(data, 4, integer_keys=True)
        with pytest.raises(BodyError, match="text strings"):
            scan_cbor(data, 4)
    with pytest.raises(BodyError, match="text or integers"):
        scan_cbor(b"\xa1\xf6\x00", 4, integer_keys=True)


def test_depth_counting() -> None:
    scan_cbor(b"\x81" * 3 + b"\x00", 3)
    with pytest.raises(BodyError, match="nests deeper than 3"):
        scan_cbor(b"\x81" * 4 + b"\x00", 3)
    with pytest.raises(BodyError, match="nests deeper than 3"):
        scan_cbor(b"\x9f" * 4, 3)
    # a definite empty container is a level unless count_empty=False
    with pytest.raises(BodyError, match="nests deeper"):
        scan_cbor(b"\x81" * 3 + b"\xa0", 3)
    scan_cbor(b"\x81" * 3 + b"\xa0", 3, count_empty=False)
    # an indefinite empty one is open while it is scanned, so it always counts
    with pytest.raises(BodyError, match="nests deeper"):
        scan_cbor(b"\x81" * 3 + b"\x9f\xff", 3, count_empty=False)
    # so does an open indefinite string
    with pytest.raises(BodyError, match="nests deeper"):
        scan_cbor(b"\x81" * 3 + b"\x5f\xff", 3)
    scan_cbor(b"\x81" * 2 + b"\x5f\x41a\xff", 3)


def test_indefinite_lengths_and_floats() -> None:
    data = bytes.fromhex("bf61610161629f0102f93c00ff61635f41614162ff61647f61616162ff6165f5ff")
    scan_cbor(data, 2)
    assert cbor2.loads(data) == {"a": 1, "b": [1, 2, 1.0], "c": b"ab", "d": "ab", "e": True}


def test_bool_keys_are_not_keys() -> None:
    with pytest.raises(BodyError, match="keys"):
        scan_cbor(b"\xa1\xf5\x00", 4, integer_keys=True)


def test_deep_input_costs_no_stack() -> None:
    """A megabyte of open arrays is refused at max_depth, not by RecursionError."""
    with pytest.raises(BodyError, match="nests deeper"):
        scan_cbor(b"\x9f" * (1 << 20), 64)


# ------------------------------------------------------------------ unit: JSON


def test_json_accepts() -> None:
    assert loads_json(b'{"a":[1,2.5,"\xc3\xa9",null,true]}', 2) == {"a": [1, 2.5, "é", None, True]}


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"NaN", "NaN is not JSON"),
        (b'{"a":Infinity}', "Infinity is not JSON"),
        (b"[-Infinity]", "-Infinity is not JSON"),
        (b"\xff", "UTF-8"),
        ('{"a":1}'.encode("utf-16"), "UTF-8"),  # json.loads(bytes) would sniff UTF-16
        (b"{", "invalid JSON"),
        (b'{"a":1}x', "invalid JSON"),
        (b"1" * 5000, "invalid JSON"),  # over the int-digits limit
        (b"[" * 100_000 + b"]" * 100_000, "too deeply"),
        (b"[[[[]]]]", "nests deeper than 3"),
    ],
)
def test_json_rejects(data: bytes, match: str) -> None:
    with pytest.raises(BodyError, match=match):
        loads_json(data, 3)


def test_json_depth_counting() -> None:
    loads_json(b"[[[1]]]", 3)
    loads_json(b'{"a":{"b":[{}]}}', 3, count_empty=False)
    with pytest.raises(BodyError, match="deeper"):
        loads_json(b'{"a":{"b":[{}]}}', 3)
    with pytest.raises(BodyError, match="deeper"):
        loads_json(b'{"a":{"b":[{"c":1}]}}', 3, count_empty=False)


def test_body_error_is_a_value_error() -> None:
    assert issubclass(BodyError, ValueError)


# ------------------------------------------------------------ property tests


@FAST
@given(st.binary(max_size=300), st.integers(0, 40), OPTIONS)
def test_scan_raises_only_body_error(data: bytes, depth: int, options: dict[str, bool]) -> None:
    try:
        scan_cbor(data, depth, **options)
    except BodyError:
        return
    # what the scan lets through, cbor2 builds (or refuses as bad UTF-8 text)
    try:
        cbor2.loads(data)
    except cbor2.CBORDecodeError as exc:
        assert (
            isinstance(exc.__cause__, UnicodeDecodeError)
            or "UTF-8" in str(exc)
            or ("utf-8" in str(exc))
        )


@FAST
@given(st.binary(max_size=300), st.integers(0, 40), st.booleans())
def test_loads_json_raises_only_body_error(data: bytes, depth: int, count_empty: bool) -> None:
    try:
        loads_json(data, depth, count_empty=count_empty)
    except BodyError:
        pass


@FAST
@given(st.text(alphabet='[]{}:,"0123456789.eE+-tfnaulrsNIy \\', max_size=300))
def test_loads_json_json_shaped_text(text: str) -> None:
    try:
        loads_json(text.encode(), 8)
    except BodyError:
        pass


# Heads with huge arguments: the classic "tiny message, enormous declared length".
_huge = st.sampled_from([24, 25, 26, 27]).flatmap(
    lambda info: st.tuples(st.just(info), st.integers(0, (1 << (8 << (info - 24))) - 1))
)


@st.composite
def hostile_heads(draw: st.DrawFn) -> bytes:
    out = bytearray()
    for _ in range(draw(st.integers(1, 12))):
        major = draw(st.integers(0, 7))
        info, value = draw(_huge)
        out.append(major << 5 | info)
        out += value.to_bytes(1 << (info - 24), "big")
        out += draw(st.binary(max_size=4))
    return bytes(out)


@settings(max_examples=100, deadline=None)
@given(hostile_heads(), OPTIONS)
def test_scan_never_allocates_by_a_declared_length(data: bytes, options: dict[str, bool]) -> None:
    tracemalloc.start()
    try:
        try:
            scan_cbor(data, 16, **options)
        except BodyError:
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024


# Values in the data model, and an encoder that picks any legal CBOR spelling:
# shortest or longer argument sizes, definite or indefinite containers and
# chunked strings, half/single/double floats when exact.
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)


def _depth(value: Any, count_empty: bool) -> int:
    if isinstance(value, list | dict):
        children = list(value.values()) if isinstance(value, dict) else value
        if not children:
            return 1 if count_empty else 0
        return 1 + max(_depth(c, count_empty) for c in children)
    return 0


def _head(draw: st.DrawFn, major: int, arg: int) -> bytes:
    sizes = [s for s in (0, 1, 2, 4, 8) if (s == 0 and arg < 24) or (s and arg < 1 << (8 * s))]
    size = draw(st.sampled_from(sizes))
    if size == 0:
        return bytes([major << 5 | arg])
    info = {1: 24, 2: 25, 4: 26, 8: 27}[size]
    return bytes([major << 5 | info]) + arg.to_bytes(size, "big")


def _encode(draw: st.DrawFn, value: Any) -> tuple[bytes, int, int]:
    """The bytes, and the levels the scan sees with count_empty True / False
    (an open indefinite-length string is a level too)."""
    if value is None:
        return b"\xf6", 0, 0
    if value is True:
        return b"\xf5", 0, 0
    if value is False:
        return b"\xf4", 0, 0
    if isinstance(value, int):
        return (_head(draw, 0, value) if value >= 0 else _head(draw, 1, -1 - value)), 0, 0
    if isinstance(value, float):
        spellings = [b"\xfb" + struct.pack(">d", value)]
        for code, fmt in ((b"\xfa", ">f"), (b"\xf9", ">e")):
            try:
                packed = struct.pack(fmt, value)
            except (OverflowError, struct.error):
                continue
            if struct.unpack(fmt, packed)[0] == value:
                spellings.append(code + packed)
        return draw(st.sampled_from(spellings)), 0, 0
    if isinstance(value, str | bytes):
        raw = value.encode() if isinstance(value, str) else value
        major = 3 if isinstance(value, str) else 2
        if not draw(st.booleans()):
            return _head(draw, major, len(raw)) + raw, 0, 0
        out = bytes([major << 5 | 31])
        for piece in draw(_splits(value)):  # text splits at character boundaries
            chunk = piece.encode() if isinstance(piece, str) else piece
            out += _head(draw, major, len(chunk)) + chunk
        return out + b"\xff", 1, 1
    if isinstance(value, list):
        items = [_encode(draw, v) for v in value]
        major, count = 4, len(value)
    else:
        assert isinstance(value, dict)
        items = [_encode(draw, x) for kv in value.items() for x in kv]
        major, count = 5, len(value)
    body = b"".join(b for b, _, _ in items)
    deep = max((d for _, d, _ in items), default=0)
    deep_ne = max((d for _, _, d in items), default=0)
    if draw(st.booleans()):
        return bytes([major << 5 | 31]) + body + b"\xff", 1 + deep, 1 + deep_ne
    return _head(draw, major, count) + body, 1 + deep, (1 + deep_ne) if items else 0


def _splits(value: str | bytes) -> st.SearchStrategy[list[Any]]:
    cuts = st.lists(st.integers(0, len(value)), max_size=3).map(sorted)
    return cuts.map(lambda c: [value[a:b] for a, b in zip([0, *c], [*c, len(value)], strict=True)])


@st.composite
def encoded(draw: st.DrawFn) -> tuple[Any, bytes, int, int]:
    value = draw(values)
    return (value, *_encode(draw, value))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@FAST
@given(encoded(), st.integers(0, 6), OPTIONS)
def test_scan_agrees_with_cbor2(
    case: tuple[Any, bytes, int, int], depth: int, options: dict[str, bool]
) -> None:
    """Well-formed, tag-free input in any legal spelling: within the depth the
    scan accepts and cbor2 rebuilds the value; beyond it the scan refuses with
    a depth error and nothing else."""
    value, data, levels, levels_no_empty = case
    assert _same(cbor2.loads(data), value)
    if (levels if options["count_empty"] else levels_no_empty) <= depth:
        scan_cbor(data, depth, **options)
    else:
        with pytest.raises(BodyError, match="nests deeper"):
            scan_cbor(data, depth, **options)


@FAST
@given(values, st.integers(0, 6), st.booleans())
def test_loads_json_agrees_with_json(value: Any, depth: int, count_empty: bool) -> None:
    value = _jsonable(value)
    data = json.dumps(value, ensure_ascii=False).encode()
    if _depth(value, count_empty) <= depth:
        assert loads_json(data, depth, count_empty=count_empty) == json.loads(data)
    else:
        with pytest.raises(BodyError, match="nests deeper"):
            loads_json(data, depth, count_empty=count_empty)


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, float) and math.isinf(value):
        return 0
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value
