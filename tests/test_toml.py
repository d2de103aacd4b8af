"""The TOML fallback: on Python 3.10, which pyproject.toml accepts, tomllib does not exist and
mvbench must read suites and the manifest through tomli."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


def test_without_tomllib_mvbench_reads_toml_through_tomli():
    pytest.importorskip("tomli", reason="tomli (the Python 3.10 fallback) is not installed here")
    # Simulate Python 3.10: no tomllib module, an older version_info; the suite parser and the
    # dataset manifest must still load.
    code = (
        "import sys\n"
        "sys.modules['tomllib'] = None\n"  # an import of tomllib now raises ImportError
        "sys.version_info = (3, 10, 14, 'final', 0)\n"
        "import mvbench.toml as t\n"
        "assert t.loads.__module__.startswith('tomli'), t.loads.__module__\n"
        "from mvbench.suite import parse_suite\n"
        "import mvbench_datasets.manifest as r\n"
        "assert len(r.load_manifest()) > 20\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_the_module_exposes_loads_and_the_error():
    toml = importlib.import_module("mvbench.toml")
    assert toml.loads('a = 1\n') == {"a": 1}
    with pytest.raises(toml.TOMLDecodeError):
        toml.loads("a = \n")
