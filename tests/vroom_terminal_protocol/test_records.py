"""Events, messages and capabilities are frozen slotted dataclasses whose
`__repr__`/`__eq__`/`__hash__` come from `openmux._record.Record` (cheaper
to define at import); from the user's side they must behave exactly as
dataclasses' generated methods do."""

from __future__ import annotations

import dataclasses
import inspect

import openmux.channels
import openmux.events
import pytest
import vroom_terminal.capabilities
import vroom_terminal.events
import vroom_terminal.limits
import vroom_terminal.messages
from openmux._record import Record

MODULES = (
    openmux.events,
    openmux.channels,
    vroom_terminal.events,
    vroom_terminal.messages,
    vroom_terminal.capabilities,
    vroom_terminal.limits,
)
CLASSES = [
    obj
    for module in MODULES
    for obj in vars(module).values()
    if inspect.isclass(obj) and obj.__module__ == module.__name__ and dataclasses.is_dataclass(obj)
]


def sample(cls: type) -> object:
    """An instance with a distinct value in every field without a default."""
    kwargs = {}
    for index, f in enumerate(dataclasses.fields(cls)):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[f.name] = f"v{index}"
    try:
        return cls(**kwargs)
    except (TypeError, ValueError):
        pytest.skip(f"{cls.__name__} validates its fields")


def test_every_class_is_covered() -> None:
    assert len(CLASSES) >= 60
    assert all(issubclass(cls, Record) for cls in CLASSES)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_behaves_as_a_frozen_slotted_dataclass(cls: type) -> None:
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    assert "__slots__" in cls.__dict__
    obj = sample(cls)
    assert not hasattr(obj, "__dict__")
    for f in dataclasses.fields(cls)[:1]:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, f.name, 1)
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(obj, f.name)
    # repr: dataclasses' format over the repr=True fields
    shown = ", ".join(
        f"{f.name}={getattr(obj, f.name)!r}" for f in dataclasses.fields(cls) if f.repr
    )
    assert repr(obj) == f"{cls.__qualname__}({shown})"
    # equality: same class and equal compare=True fields
    twin = dataclasses.replace(obj)
    assert twin == obj
    assert (twin != obj) is False
    assert obj.__eq__(object()) is NotImplemented
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        try:
            other = dataclasses.replace(obj, **{f.name: "changed"})
        except (TypeError, ValueError):
            continue
        assert (other == obj) is (not f.compare)
    # hash: of the fields dataclasses hashes (hash=None follows compare)
    hashed = tuple(
        getattr(obj, f.name)
        for f in dataclasses.fields(cls)
        if (f.compare if f.hash is None else f.hash)
    )
    try:
        expected = hash(hashed)
    except TypeError:
        with pytest.raises(TypeError):
            hash(obj)
    else:
        assert hash(obj) == expected
        assert hash(twin) == hash(obj)


def test_secrets_stay_out_of_repr() -> None:
    request = vroom_terminal.messages.AuthRequest(method="token", token="s3cret")
    assert "s3cret" not in repr(request)
    assert request == vroom_terminal.messages.AuthRequest(method="token", token="s3cret")


def test_subclass_instances_are_not_equal_to_the_base_class() -> None:
    base = vroom_terminal.events.PtyOutput(session="", data=b"x")

    @dataclasses.dataclass(frozen=True, slots=True, repr=False, eq=False)
    class Sub(vroom_terminal.events.PtyOutput):
        pass

    sub = Sub(session="", data=b"x")
    assert base != sub and sub != base
    assert repr(sub).endswith("Sub(session='', data=b'x', compressed=False)")


def test_recursive_repr() -> None:
    items: list[object] = []
    event = openmux.events.ErrorReceived(code=1, reason=items)  # type: ignore[arg-type]
    items.append(event)
    assert repr(event) == "ErrorReceived(code=1, channel=None, reason=[...])"
