"""The fixtures of tests/vroomd_terminal (a real vroomd on 127.0.0.1), reused."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "vroomd_terminal"))
vroomd = importlib.import_module("vterm_support").vroomd
