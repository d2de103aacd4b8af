"""Two processes writing one records file: no torn line, no trial run twice."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mvbench.claims import claim_one, held_by_others, release
from mvbench.results import append_record, read_records

from run_helpers import kmeans_suite


def _append_many(path: str, tag: str, count: int) -> None:
    big = "x" * 70_000  # far above PIPE_BUF: one write is not atomic without the lock
    for i in range(count):
        append_record(Path(path), {"trial_key": f"{tag}{i}", "status": "ok", "pad": big})


def test_concurrent_appends_never_tear_or_interleave_lines(tmp_path):
    path = tmp_path / "trials.jsonl"
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_append_many, args=(str(path), tag, 15)) for tag in "ab"]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
        assert w.exitcode == 0
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    records = [json.loads(line) for line in lines[:-1]]
    assert sorted(r["trial_key"] for r in records) == sorted(f"{t}{i}" for t in "ab" for i in range(15))


def test_claims_leave_another_live_process_its_trials(tmp_path):
    path = tmp_path / "trials.jsonl"
    # Another process claims k1 and k2 and stays alive.
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from mvbench.claims import claim_one
        print([claim_one(Path({str(path)!r}), k) for k in ("k1", "k2")], flush=True)
        sys.stdin.readline()
    """)
    other = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert other.stdout.readline().strip() == "[True, True]"
        assert held_by_others(path, ["k1", "k2", "k3"]) == {"k1", "k2"}
        assert [claim_one(path, k) for k in ("k1", "k2", "k3")] == [False, False, True]
        assert claim_one(path, "k3")  # claiming again what this process holds is a no-op
        assert not claim_one(path, "k4", recorded_meanwhile=lambda key: key == "k4")
    finally:
        other.stdin.write("\n")
        other.stdin.flush()
        other.wait(30)
    # Its process has ended: its claims are stale and can be taken.
    assert claim_one(path, "k1") and claim_one(path, "k2") and not held_by_others(path, ["k1", "k2"])
    lines = path.with_name("trials.jsonl.claims").read_text().splitlines()
    assert sorted(json.loads(line)["key"] for line in lines) == ["k1", "k2", "k3"]
    release(path)
    assert not path.with_name("trials.jsonl.claims").exists()


def test_two_sweeps_of_one_suite_run_each_trial_once(tmp_path):
    suite = tmp_path / "twice.toml"
    suite.write_text(kmeans_suite(seeds=4, samples=60, n_init=2))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mvbench.cli", "sweep", str(suite), "-q"]
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
    records = read_records(tmp_path / "results" / "twice" / "trials.jsonl")
    keys = [r["trial_key"] for r in records]
    assert len(keys) == 4 and len(set(keys)) == 4
