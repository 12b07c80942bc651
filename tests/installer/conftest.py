"""Fixtures for the installer tests; they live in installer_support.py (a unique module
name: every test folder has a "conftest")."""

from __future__ import annotations

import sys
from pathlib import Path

if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from installer_support import platform  # noqa: F401  (a fixture)
