"""The quality scripts' shared ``--out`` handling (benchmarks/quality.py): a seed is claimed in the
records file before it runs, a recorded seed is reused, and a seed another process holds is passed
over until the others are done, then waited for. Training is replaced by a stub that makes a record,
since the scripts' trials take minutes; this keeps their shared module working against the core's
claims API."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from mvbench.runner import Trial

from run_helpers import claimed_by_another

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def quality(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import quality as module
    return module


@pytest.fixture
def trained(quality, monkeypatch) -> list[int]:
    """The seeds trained in this process, in order; each makes an ok record under its trial key."""
    seeds: list[int] = []

    def train(resolved, settings, cache, progress):
        seeds.append(resolved.trial.seed)
        return _ok_record(resolved.key(quality.resolve_device("cpu"), "fp32"), resolved.trial.seed)

    monkeypatch.setattr(quality, "run_resolved", train)
    return seeds


def _checker(quality, out: Path):
    return quality.Quality(argparse.Namespace(precision="fp32", out=out))


def _claims(out: Path) -> list[dict]:
    path = out.with_name(out.name + ".claims")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _ok_record(key: str, seed: int) -> dict:
    return {"trial_key": key, "status": "ok", "seed": seed, "metrics": {"acc": 0.5 + seed / 10}}


def _trials(seeds) -> list[Trial]:
    return [Trial(method="kmeans", dataset="handwritten", seed=seed) for seed in seeds]


def _key(quality, checker, trial: Trial) -> str:
    return quality.resolve(trial, checker.registry).key(checker.device, checker.precision)


def _describe(record: dict) -> str:
    return f"seed {record['seed']}"


def test_an_unrecorded_seed_is_claimed_run_recorded_and_released(quality, trained, tmp_path, monkeypatch):
    out = tmp_path / "trials.jsonl"
    checker = _checker(quality, out)
    held_while_training = []
    train = quality.run_resolved
    monkeypatch.setattr(quality, "run_resolved", lambda *args, **kw: held_while_training.append(
        [(c["key"], c["pid"]) for c in _claims(out)]) or train(*args, **kw))
    [record] = checker.run(_trials([0]), _describe)
    key = _key(quality, checker, _trials([0])[0])
    assert held_while_training == [[(key, os.getpid())]]
    assert trained == [0] and record["trial_key"] == key
    assert [r["trial_key"] for r in quality.read_records(out)] == [key]
    assert _claims(out) == []


def test_a_recorded_seed_is_reused_without_a_claim(quality, trained, tmp_path, capsys):
    out = tmp_path / "trials.jsonl"
    checker = _checker(quality, out)
    quality.append_record(out, _ok_record(_key(quality, checker, _trials([0])[0]), 0))
    [record] = checker.run(_trials([0]), _describe)
    assert trained == [] and record["metrics"] == {"acc": 0.5}
    assert "reused the record" in capsys.readouterr().out
    assert _claims(out) == []


def test_a_seed_held_elsewhere_waits_until_the_others_are_done(quality, trained, tmp_path, monkeypatch, capsys):
    out = tmp_path / "trials.jsonl"
    checker = _checker(quality, out)
    held = _key(quality, checker, _trials([0])[0])
    claimed_by_another(out, held)
    polls = []

    def other_process_finishes(seconds: float) -> None:
        polls.append((seconds, list(trained)))
        quality.append_record(out, _ok_record(held, 0))

    monkeypatch.setattr(quality.time, "sleep", other_process_finishes)
    records = checker.run(_trials([0, 1, 2]), _describe, poll_seconds=5)
    assert trained == [1, 2]  # seed 0 was passed over, not waited for first
    assert polls == [(5, [1, 2])]  # the wait came after the other seeds
    assert [r["seed"] for r in records] == [0, 1, 2] and records[0]["trial_key"] == held
    assert capsys.readouterr().out.count("running in another process") == 1
    assert [c["pid"] for c in _claims(out)] == [os.getppid()]  # never claimed by us


def test_snapshots_of_long_seeds_go_beside_the_records(quality, tmp_path):
    assert _checker(quality, tmp_path / "trials.jsonl").settings.checkpoints == str(tmp_path / "checkpoints")
    assert _checker(quality, None).settings.checkpoints is None
