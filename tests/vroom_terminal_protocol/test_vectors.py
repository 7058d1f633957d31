"""The codecs against the golden vectors in tests/vectors/terminal/, both ways."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from vroom_terminal import (
    DecodeError,
    Encoding,
    MessageType,
    ProtocolError,
    PtyType,
    decode_message,
    decode_window_ack,
    encode_message,
)
from vroom_terminal.ptywire import check_eof

from .make_vectors import build, plain

DIR = Path(__file__).resolve().parents[1] / "vectors" / "terminal"
FILES = sorted(DIR.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _cases(kind: str) -> list[Any]:
    return [
        pytest.param(path.stem, v, id=f"{path.stem}: {v['name']}")
        for path in FILES
        if path.stem != "pty"
        for v in _load(path)[kind]
    ]


def test_one_file_per_message() -> None:
    names = {_load(p)["message"] for p in FILES if _load(p).get("message")}
    assert names == {t.name for t in MessageType}
    assert (DIR / "pty.json").exists()


def test_files_are_what_the_generator_writes() -> None:
    for key, content in build().items():
        assert _load(DIR / f"{key}.json") == json.loads(json.dumps(content)), key


def _encoding(name: str) -> Encoding | None:
    return {"cbor": Encoding.CBOR, "json": Encoding.JSON}.get(name)


@pytest.mark.parametrize(("stem", "vector"), _cases("vectors"))
def test_valid_vector(stem: str, vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    encoding = _encoding(vector["encoding"])
    from_server = vector["direction"] == "S->C"
    message = decode_message(vector["mux_type"], data, encoding, from_server=from_server)
    expected = dict(vector["message"])
    assert type(message).__name__ == expected.pop("class")
    assert plain(message) == expected
    assert encode_message(message, encoding) == (vector["mux_type"], data)
    # the header is type:u32 length:u32 and the Type byte its low byte
    assert int.from_bytes(data[:4], "big") & 0xFF == vector["mux_type"]
    assert int.from_bytes(data[4:8], "big") == len(data) - 8
    payload = data[8:]
    if vector["encoding"] == "cbor":
        assert cbor2.loads(payload) == vector["body"]
    elif vector["encoding"] == "json":
        assert json.loads(payload) == vector["body"]
    else:
        assert payload.hex() == vector["body"]["payload_hex"]


@pytest.mark.parametrize(("stem", "vector"), _cases("invalid"))
def test_invalid_vector(stem: str, vector: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as exc:
        decode_message(vector["mux_type"], bytes.fromhex(vector["hex"]),
                       _encoding(vector["encoding"]), from_server=False)  # fmt: skip
    assert exc.value.code == vector["code"]


def test_pty_vectors() -> None:
    content = _load(DIR / "pty.json")
    for vector in content["vectors"]:
        data = bytes.fromhex(vector["hex"])
        kind = PtyType(vector["mux_type"])
        if kind is PtyType.WINDOW_ACK:
            assert decode_window_ack(data) == vector["meaning"]["count"]
        elif kind is PtyType.EOF:
            check_eof(data)
    for vector in content["invalid"]:
        data = bytes.fromhex(vector["hex"])
        if vector["mux_type"] not in set(PtyType):
            assert vector["code"] == 404
            continue
        with pytest.raises(DecodeError) as exc:
            if vector["mux_type"] == PtyType.WINDOW_ACK:
                decode_window_ack(data)
            else:
                check_eof(data)
        assert exc.value.code == vector["code"]
