"""The quality scripts' shared ``--out`` handling (benchmarks/quality.py): a seed is claimed in the
records file before it runs, a recorded seed is reused, and a seed another process holds is waited
for. The scripts themselves train for minutes and are not run here; this keeps their shared module
importable against the core's claims API."""

from __future__ import annotations

import argparse
import json
import os
import socket
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def quality(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import quality as module
    return module


def _checker(quality, out: Path):
    return quality.Quality(argparse.Namespace(precision="fp32", out=out))


def _claims(out: Path) -> list[dict]:
    path = out.with_name(out.name + ".claims")
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _ok_record(key: str) -> dict:
    return {"trial_key": key, "status": "ok", "seed": 0, "metrics": {"acc": 0.5}}


def test_an_unrecorded_seed_is_claimed_by_this_process(quality, tmp_path):
    out = tmp_path / "trials.jsonl"
    assert _checker(quality, out).claimed_or_recorded("k1", "toy seed 0") is None
    assert [(c["key"], c["pid"]) for c in _claims(out)] == [("k1", os.getpid())]


def test_a_recorded_seed_is_reused_without_a_claim(quality, tmp_path):
    out = tmp_path / "trials.jsonl"
    quality.append_record(out, _ok_record("k1"))
    reused = _checker(quality, out).claimed_or_recorded("k1", "toy seed 0")
    assert reused["trial_key"] == "k1" and reused["metrics"] == {"acc": 0.5}
    assert _claims(out) == []


def test_a_seed_held_elsewhere_is_waited_for_and_its_record_reused(quality, tmp_path, monkeypatch, capsys):
    out = tmp_path / "trials.jsonl"
    # The parent process is alive for the whole test, so its claim stands.
    other = {"key": "k1", "pid": os.getppid(), "host": socket.gethostname()}
    out.with_name(out.name + ".claims").write_text(json.dumps(other) + "\n")
    polls = []

    def other_process_finishes(seconds: float) -> None:
        polls.append(seconds)
        quality.append_record(out, _ok_record("k1"))

    monkeypatch.setattr(quality.time, "sleep", other_process_finishes)
    reused = _checker(quality, out).claimed_or_recorded("k1", "toy seed 0", poll_seconds=5)
    assert reused["trial_key"] == "k1"
    assert polls == [5]
    assert "running in another process" in capsys.readouterr().out
    assert [c["pid"] for c in _claims(out)] == [os.getppid()]  # never claimed by us
