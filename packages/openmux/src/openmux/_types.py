"""Type aliases shared by the modules (collections.abc.Buffer is 3.12+)."""

from __future__ import annotations

from typing import TypeAlias

Buffer: TypeAlias = "bytes | bytearray | memoryview"
