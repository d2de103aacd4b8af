"""TOML reading on every supported Python: ``tomllib`` from 3.11, the ``tomli`` backport on 3.10
(the same API; a dependency of mvbench there)."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib as _toml
else:  # pragma: no cover - exercised by tests/test_toml.py through an import hook
    import tomli as _toml

loads = _toml.loads
TOMLDecodeError = _toml.TOMLDecodeError

__all__ = ["TOMLDecodeError", "loads"]
