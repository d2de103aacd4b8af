"""Every script under benchmarks/ imports against the current core. The scripts train for minutes
and none runs in the suite, so a renamed core function would otherwise surface only when someone
starts a long benchmark (as ``claims.claim`` once did for every quality script)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(path.stem for path in BENCHMARKS.glob("*.py"))


def test_the_benchmarks_folder_has_scripts():
    assert "quality" in SCRIPTS and len(SCRIPTS) > 10


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_script_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(sys, "argv", [script])  # a script that parsed at import would see no options
    module = importlib.import_module(script)
    assert Path(module.__file__).resolve().parent == BENCHMARKS
