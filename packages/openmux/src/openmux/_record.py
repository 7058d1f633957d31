"""`Record`: the base of the frozen, slotted dataclasses of the VROOM packages.

Why: `dataclasses` compiles six functions from source for every frozen
class when its module is imported (`__init__`, `__repr__`, `__eq__`,
`__hash__`, `__setattr__`, `__delattr__`), ~0.45 ms a class; a `vroom term`
client defines about sixty before its first byte. Three of the six are the
same for every class but for the field names, so they are written once
here and the classes are declared

    @dataclass(frozen=True, slots=True, repr=False, eq=False)
    class Event(Record): ...

which compiles only `__init__` and the two frozen setters. What the user
sees is dataclasses' own behaviour, kept exactly: the repr
`Name(field=value, ...)` of the `repr=True` fields (`...` on recursion),
equality only with an instance of the very same class over the
`compare=True` fields, the hash of the fields dataclasses would hash, and
`dataclasses.fields()`/`replace()`/`asdict()`, immutability and slots as
before. Shared by the VROOM protocol packages (an import of this private
module from vroom_terminal is intended).
"""

from __future__ import annotations

from _thread import get_ident
from dataclasses import fields

_REPR: dict[type, tuple[str, ...]] = {}
_COMPARE: dict[type, tuple[str, ...]] = {}
_HASH: dict[type, tuple[str, ...]] = {}
_IN_REPR: set[tuple[int, int]] = set()


def _names(cache: dict[type, tuple[str, ...]], cls: type, kind: str) -> tuple[str, ...]:
    try:
        return cache[cls]
    except KeyError:
        pass
    if kind == "repr":
        names = tuple(f.name for f in fields(cls) if f.repr)
    elif kind == "compare":
        names = tuple(f.name for f in fields(cls) if f.compare)
    else:  # as dataclasses: hash=None follows compare
        names = tuple(f.name for f in fields(cls) if (f.compare if f.hash is None else f.hash))
    cache[cls] = names
    return names


class Record:
    """Base class: dataclasses' `__repr__`, `__eq__` and `__hash__`, once."""

    __slots__ = ()

    def __repr__(self) -> str:
        key = (id(self), get_ident())
        if key in _IN_REPR:
            return "..."
        _IN_REPR.add(key)
        try:
            cls = self.__class__
            body = ", ".join(
                f"{name}={getattr(self, name)!r}" for name in _names(_REPR, cls, "repr")
            )
        finally:
            _IN_REPR.discard(key)
        return f"{cls.__qualname__}({body})"

    def __eq__(self, other: object) -> bool:
        cls = self.__class__
        if other.__class__ is not cls:
            return NotImplemented
        names = _names(_COMPARE, cls, "compare")
        return tuple([getattr(self, n) for n in names]) == tuple([getattr(other, n) for n in names])

    def __hash__(self) -> int:
        names = _names(_HASH, self.__class__, "hash")
        return hash(tuple([getattr(self, n) for n in names]))
