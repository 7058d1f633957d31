"""Small validators shared by the message decoders.

Every one raises `DecodeError` (400) naming the key, so a peer learns which
MUST key was missing or mistyped; unknown keys are never looked at.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import DecodeError, MessageTooLarge

_MISSING: Any = object()


def as_map(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise DecodeError(f"{what} must be a map")
    return value


def _check_text(value: str, key: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DecodeError(f"{key!r} is not valid Unicode text") from None
    return value


def req_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        raise DecodeError(f"missing MUST key {key!r}")
    if not isinstance(value, str):
        raise DecodeError(f"{key!r} must be a string")
    return _check_text(value, key)


def opt_str(obj: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise DecodeError(f"{key!r} must be a string")
    return _check_text(value, key)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def req_int(obj: Mapping[str, Any], key: str, lo: int, hi: int) -> int:
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        raise DecodeError(f"missing MUST key {key!r}")
    if not is_int(value) or not lo <= value <= hi:
        raise DecodeError(f"{key!r} must be an integer in {lo}..{hi}")
    return int(value)


def opt_int(obj: Mapping[str, Any], key: str, lo: int, hi: int) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if not is_int(value) or not lo <= value <= hi:
        raise DecodeError(f"{key!r} must be an integer in {lo}..{hi}")
    return int(value)


def req_bool(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        raise DecodeError(f"missing MUST key {key!r}")
    if not isinstance(value, bool):
        raise DecodeError(f"{key!r} must be a boolean")
    return value


def opt_bool(obj: Mapping[str, Any], key: str) -> bool:
    """Omitted (or null) is false, as SELECT treats omitted OFFER keys."""
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise DecodeError(f"{key!r} must be a boolean")
    return value


def opt_map(obj: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DecodeError(f"{key!r} must be a map")
    return value


def str_list(value: Any, key: str, max_items: int | None = None) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise DecodeError(f"{key!r} must be a list of strings")
    if max_items is not None and len(value) > max_items:
        raise MessageTooLarge(f"{key!r} has more than {max_items} entries")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise DecodeError(f"{key!r} must be a list of strings")
        out.append(_check_text(item, key))
    return tuple(out)


def opt_str_list(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    return str_list(value, key)


def int_list(value: Any, key: str, lo: int, hi: int) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(is_int(v) and lo <= v <= hi for v in value):
        raise DecodeError(f"{key!r} must be a list of integers in {lo}..{hi}")
    return tuple(int(v) for v in value)
