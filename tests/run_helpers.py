"""Running explicit trials in tests the way ``mvbench run`` does: planned against the folder's
records, through the sweep's driver and the sequential executor, the summary written after."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mvbench.api import execute_run, plan_run
from mvbench.registry import get_registry
from mvbench.runner import Settings, Trial
from mvbench.sweep import SequentialExecutor, run_sweep

TEST_PLUGINS = ("mvbench_testplugins",)


def run_trials(trials: Sequence[Trial], out_dir: Path, plugins: Sequence[str] = TEST_PLUGINS,
               settings: Settings = Settings(device="cpu")) -> list[dict[str, Any]]:
    """One record per trial (a trial already recorded ok in ``out_dir`` keeps its record)."""
    run_plan = plan_run(trials, settings, get_registry(tuple(plugins)), out_dir)
    records, _ = execute_run(run_plan, lambda pending: run_sweep(
        pending, settings, tuple(plugins), SequentialExecutor(), run_plan.results_file, suite=None))
    return records
