"""mvbench check: the example plugin passes, a broken one fails with messages saying what to fix."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mvbench import cli
from mvbench.conformance import check_plugin
from mvbench.registry import build_registry

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mvbench-example-plugin"


@pytest.fixture
def example_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    sys.modules.pop("mvbench_example_plugin", None)


def test_the_example_plugin_passes_every_check(example_on_path, capsys):
    assert cli.main(["-p", "mvbench_example_plugin", "check", "mvbench_example_plugin"]) == 0
    out = capsys.readouterr().out
    assert "best-view-kmeans" in out and "drop-last-view" in out and "FAILED" not in out


def test_a_broken_plugin_fails_with_what_to_fix():
    import mvbench_brokenplugin

    registry = build_registry(objects=[("broken", mvbench_brokenplugin)])
    results = {(r.plugin, r.check): r for r in check_plugin(registry, "broken")}
    failed = {key: r.message for key, r in results.items() if not r.ok}
    assert "shape (59,)" in failed[("broken-length", "labels: one integer label per sample")]
    assert "seed_for" in failed[("broken-seed", "the same seed gives the same labels")]
    nan = [m for (plugin, _), m in failed.items() if plugin == "broken-nan"]
    assert any("never read rows where inp.mask is False" in m for m in nan)
    assert "lost every view" in failed[("broken-mask", "mask: (N, V) bool, every sample keeps a view")]
    # What works in the broken plugin is not reported as failing.
    assert results[("broken-seed", "labels: one integer label per sample")].ok


def test_every_built_in_method_passes(capsys):
    registry = build_registry()
    for method in ("kmeans", "rav-literal"):
        results = check_plugin(registry, method)
        assert results and all(r.ok for r in results), [r for r in results if not r.ok]


def test_check_exits_1_on_a_failure_and_names_unknown_targets(capsys):
    assert cli.main(["-p", "mvbench_brokenplugin", "check", "broken-length"]) == 1
    assert "FAILED" in capsys.readouterr().out
    assert cli.main(["check", "no-such-plugin"]) == 2
    assert "error:" in capsys.readouterr().err
