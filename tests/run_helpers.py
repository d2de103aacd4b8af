"""Running explicit trials in tests the way ``mvbench run`` does: planned against the folder's
records, through the sweep's driver and the sequential executor, the summary written after."""

from __future__ import annotations

import json
import os
import socket
import textwrap
from collections.abc import Callable, Sequence
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


def claimed_by_another(records: Path, *keys: str) -> None:
    """Claims of ``keys`` beside the records file ``records``, held by a live process other than
    this one: the one that started pytest, alive for the whole test."""
    records.parent.mkdir(parents=True, exist_ok=True)
    alive = {"pid": os.getppid(), "host": socket.gethostname()}
    records.with_name(records.name + ".claims").write_text(
        "".join(json.dumps({"key": key, **alive}) + "\n" for key in keys))


def kmeans_suite(*, seeds: int = 2, samples: int = 40, n_init: int = 1, head: str = "", methods: str = "",
                 tail: str = "") -> str:
    """The TOML of a suite that runs in seconds: k-means on a small synthetic dataset, on the CPU.
    ``head`` adds lines to [suite], ``methods`` more [[methods]] tables, ``tail`` anything after."""
    return "\n".join([
        "[suite]", f"seeds = {seeds}", 'device = "cpu"', textwrap.dedent(head).strip(),
        "[[methods]]", 'name = "kmeans"', 'method = "kmeans"', f"options = {{ n_init = {n_init} }}",
        textwrap.dedent(methods).strip(),
        "[[datasets]]", 'name = "synthetic"', f"options = {{ samples = {samples}, dims = [4] }}",
        textwrap.dedent(tail).strip(), ""])


def assert_seeded(fit: Callable[[int], Any], seed: int) -> None:
    """``fit(seed)`` (a method's output for a trial seed) is reproducible: twice the same labels and
    loss history, torch's global RNG left as the caller had it, and another seed trains otherwise."""
    import numpy as np
    import torch

    before = torch.get_rng_state()
    a, b = fit(seed), fit(seed)
    assert torch.equal(torch.get_rng_state(), before)
    assert np.array_equal(a.labels, b.labels)
    assert a.extras["loss_history"] == b.extras["loss_history"]
    assert fit(seed + 1).extras["loss_history"] != a.extras["loss_history"]
