"""``mvbench run`` is a sweep of one cell: the sweep's driver and executors (--jobs, --executor),
its claims on trials, and run's own resume, table, summary and exit codes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mvbench import api, executors
from mvbench.registry import get_registry
from mvbench.results import RECORDS_FILE, read_records
from mvbench.runner import Settings

from run_helpers import claimed_by_another

TINY = ["--set", "dataset.samples=60", "--set", "dataset.dims=5", "--set", "n_init=1"]


def _run(cli, out: Path, *flags: str, seeds: str = "3", method: str = "kmeans"):
    return cli("-p", "mvbench_testplugins", "run", "-m", method, "-d", "synthetic", "--seeds", seeds,
               *(TINY if method == "kmeans" else TINY[:4]), "--out", str(out), "-q", *flags)


def test_run_with_jobs_runs_in_the_pool_and_gives_the_sequential_labels(cli, tmp_path):
    code, out, err = _run(cli, tmp_path / "pool", "--jobs", "2")
    assert code == 0, err
    pooled = read_records(tmp_path / "pool" / RECORDS_FILE)
    assert all("worker" in r for r in pooled)  # each ran in a worker process
    seeds = [line.split("│")[1].strip() for line in out.splitlines() if line.count("│") > 5]
    assert seeds[:3] == ["0", "1", "2"]  # the table in seed order, whatever order the pool finished in
    code, _, err = _run(cli, tmp_path / "seq")
    assert code == 0, err
    sequential = read_records(tmp_path / "seq" / RECORDS_FILE)
    assert not any("worker" in r for r in sequential)
    by_seed = {r["seed"]: r["labels_sha256"] for r in sequential}
    assert {r["seed"]: r["labels_sha256"] for r in pooled} == by_seed
    assert pd.read_csv(tmp_path / "pool" / "summary.csv")["n_seeds"].tolist() == [3]


def test_run_rejects_executor_mistakes_before_any_trial(cli, tmp_path, monkeypatch):
    code, _, err = _run(cli, tmp_path / "a", "--executor", "sequential", "--jobs", "2")
    assert code == 2 and "use --executor pool" in err and not (tmp_path / "a").exists()
    monkeypatch.setattr(executors, "find_spec", lambda name: None)
    code, _, err = _run(cli, tmp_path / "b", "--executor", "ray")
    assert code == 2 and "needs Ray" in err and err.count("\n") == 1 and not (tmp_path / "b").exists()


def test_failed_trials_run_again_on_the_next_run(cli, tmp_path):
    for _ in range(2):
        code, out, _ = _run(cli, tmp_path, seeds="1,", method="diverge")
        assert code == 1 and "seed 1 failed: NonFiniteLossError" in out and "resuming" not in out
    assert [r["status"] for r in read_records(tmp_path / RECORDS_FILE)] == ["failed", "failed"]


def test_a_trial_claimed_by_another_live_process_is_left_to_it(cli, tmp_path):
    registry = get_registry(("mvbench_testplugins",))
    trials = api.run_trials_for(registry, method="kmeans", dataset="synthetic", seeds=[0, 1],
                                by_target={"method": {"n_init": "1"}, "dataset": {"samples": "60", "dims": "5"},
                                           "missing": {}})
    keys = [p.key for p in api.plan_run(trials, Settings(), registry, tmp_path).planned]

    claimed_by_another(tmp_path / "one" / RECORDS_FILE, keys[1])
    code, out, err = _run(cli, tmp_path / "one", seeds="2")
    assert code == 0, err
    assert (f"kmeans (default) on synthetic, none, seed 1: taken by another process writing "
            f"{tmp_path / 'one' / RECORDS_FILE}; left to it") in out
    assert [r["seed"] for r in read_records(tmp_path / "one" / RECORDS_FILE)] == [0]
    claimed_by_another(tmp_path / "all" / RECORDS_FILE, *keys)
    code, out, err = _run(cli, tmp_path / "all", seeds="2")
    assert code == 0 and out.count("taken by another process") == 2 and "ACC" not in out
    assert read_records(tmp_path / "all" / RECORDS_FILE) == []


def test_a_sequential_run_reads_its_dataset_once(cli, tmp_path, monkeypatch):
    from mvbench import runner

    loads = []
    original = runner.DatasetCache._load
    monkeypatch.setattr(runner.DatasetCache, "_load", lambda self, resolved: loads.append(1) or original(self, resolved))
    code, _, err = _run(cli, tmp_path / "seq")
    assert code == 0, err
    assert len(read_records(tmp_path / "seq" / RECORDS_FILE)) == 3 and len(loads) == 1  # the preflight's load
