"""The reproduction report (``mvbench report``): verdicts, which boards and records count, the
degenerate count, the Markdown file and its CI check."""

from __future__ import annotations

import math
import textwrap
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from mvbench.hookspecs import hookimpl
from mvbench.registry import build_registry
from mvbench.report import ABOVE, BELOW, NO_RESULT, REPRODUCED, collect, markdown, verdict
from mvbench.results import append_record
from mvbench.specs import DatasetSpec
from mvbench.sweep import expand, keyed
from mvbench.suite import load_suite


PUBLISHED = [
    {"method": "KMeans", "metric": "ACC", "value": 0.80, "setting": "complete; paper"},
    {"method": "KMeans", "metric": "NMI", "value": 0.50, "setting": "complete; paper"},
    {"method": "KMeans", "metric": "ACC", "value": 0.90, "setting": "missing rate 0.5; paper"},
    {"method": "KMeans", "metric": "ACC", "value": 0.99, "setting": "complete; authors' code (reproduction)"},
]

SUITE = """
    [suite]
    name = "{name}"
    description = "a suite over a dataset with published numbers"
    seeds = 3
    device = "cpu"
    threads = 1

    [[methods]]
    name = "kmeans"
    method = "kmeans"

    [[methods]]
    name = "kmeans-raw"
    method = "kmeans"
    options = {{ standardize = false }}

    [[datasets]]
    name = "paperset"

    [[missing]]
    mechanism = "none"

    [[missing]]
    mechanism = "mcar"
    rates = [0.5]
"""


def test_verdict_rule():
    assert verdict(0.80, 0.75, 0.05) == REPRODUCED                # |0.05| within 2 std (0.10)
    assert verdict(0.80, 0.69, 0.05) == BELOW                     # 0.11 beyond 2 std
    assert verdict(0.9515, 0.9415, math.nan) == REPRODUCED        # within 0.01 (float error absorbed)
    assert verdict(0.9515, 0.9414, math.nan) == BELOW             # one seed: only the 0.01 margin
    assert verdict(0.50, 0.60, 0.0) == ABOVE
    assert verdict(0.50, 0.505, 0.0) == REPRODUCED                # std 0: the 0.01 margin still applies
    assert verdict(0.50, math.nan, math.nan) == NO_RESULT


def registry_with_published(version: int = 1):
    spec = DatasetSpec(name="paperset", load=lambda options, data_dir: None, description="published numbers",
                       summary={"results": PUBLISHED})

    @hookimpl
    def mvbench_datasets():
        return [spec]

    registry = build_registry(objects=[("paperset", SimpleNamespace(mvbench_datasets=mvbench_datasets))])
    kmeans = replace(registry.methods["kmeans"], version=version)
    return replace(registry, methods={**registry.methods, "kmeans": kmeans})


# (option set, missing, seed) -> ACC, NMI; None: a failed trial. Hand-checked expectations:
#   kmeans complete     ACC 0.70/0.75/0.80 -> 0.75 +- 0.05 vs 0.80: reproduced (within 2 std)
#                       NMI 0.60 x 3       -> 0.60 +- 0.00 vs 0.50: above paper
#   kmeans-raw complete ACC 0.795 (1 seed) vs 0.80: reproduced (within 0.01); NMI 0.45: below paper
#   kmeans mcar 0.5     ACC 0.90, 0.90, failed -> 0.90 (n 2) vs 0.90: reproduced
#   kmeans-raw mcar 0.5 no record: no row
RESULTS = {("kmeans", "none", 0): (0.70, 0.60), ("kmeans", "none", 1): (0.75, 0.60),
           ("kmeans", "none", 2): (0.80, 0.60), ("kmeans-raw", "none", 0): (0.795, 0.45),
           ("kmeans", "mcar", 0): (0.90, 0.1), ("kmeans", "mcar", 1): (0.90, 0.1), ("kmeans", "mcar", 2): None}


def records_for(suite, registry, version: int, results=RESULTS, **extra_by_seed) -> list[dict]:
    out = []
    for planned in keyed(expand(suite), registry, torch.device("cpu"), "fp32"):
        trial = planned.trial
        found = (trial.option_set, trial.missing, trial.seed)
        if found not in results:
            continue
        record = {"trial_key": planned.key, "method": trial.method, "method_version": version,
                  "option_set": trial.option_set, "dataset": trial.dataset, "missing": trial.missing,
                  "missing_options": dict(trial.missing_options), "seed": trial.seed, "fill": "mean",
                  "device": "cpu", "device_name": "test cpu (1 threads)", "precision": "fp32",
                  "versions": {"mvbench": "0.1.0", "torch": "2.x", "git_commit": f"commit{version}"},
                  "train_time": 1.0, "status": "failed" if results[found] is None else "ok"}
        if results[found] is not None:
            acc, nmi = results[found]
            record["metrics"] = {"acc": acc, "nmi": nmi, "ari": 0.0, "pur": acc, "f": 0.0}
        record.update(extra_by_seed.get(f"seed{trial.seed}", {}) if trial.option_set == "kmeans" else {})
        out.append(record)
    return out


@pytest.fixture
def boards(tmp_path):
    """A leaderboards folder: the suite ``paper`` with records of kmeans version 2 (current),
    one stale record of version 1, and the same records under a smoke suite and ``ci``."""
    folder = tmp_path / "leaderboards"
    folder.mkdir()
    old, new = registry_with_published(1), registry_with_published(2)
    for name in ("paper", "smoke-paper", "ci"):
        (folder / f"{name}.toml").write_text(textwrap.dedent(SUITE.format(name=name)))
        suite = load_suite(folder / f"{name}.toml", new)
        records = records_for(suite, new, 2, seed2={"degenerate": ["one cluster"]}, seed1={"degenerate": []})
        # A version-1 record of a trial the current version also ran: it must not count.
        records += records_for(suite, old, 1, results={("kmeans", "none", 0): (0.10, 0.10)})
        for record in records:
            append_record(folder / "results" / name / "trials.jsonl", record)
    (folder / "empty.toml").write_text(textwrap.dedent(SUITE.format(name="empty")))
    return folder, new


def test_rows_verdicts_and_what_counts(boards):
    folder, registry = boards
    report = collect(folder, registry)
    got = [(r.board, r.method, r.setting, r.metric, r.paper, round(r.mean, 6), r.n, r.verdict, r.degenerate)
           for r in report.rows]
    assert got == [
        ("paper", "kmeans", "complete", "acc", 0.80, 0.75, 3, REPRODUCED, 1),
        ("paper", "kmeans", "complete", "nmi", 0.50, 0.60, 3, ABOVE, 1),
        ("paper", "kmeans-raw", "complete", "acc", 0.80, 0.795, 1, REPRODUCED, 0),
        ("paper", "kmeans-raw", "complete", "nmi", 0.50, 0.45, 1, BELOW, 0),
        ("paper", "kmeans", "mcar 0.5", "acc", 0.90, 0.90, 2, REPRODUCED, 0),
    ]
    assert report.rows[0].std == pytest.approx(0.05) and report.rows[0].difference == pytest.approx(-0.05)
    assert report.rows[0].source == "paper"  # the reproduction (0.99) is not a published number
    # The smoke suite and ci are not boards; a suite without records is listed as such.
    assert [(b.name, b.run_on, b.ok_trials, b.cells, b.not_counted) for b in report.boards] == [
        ("empty", "", 0, 0, 0), ("paper", "cpu fp32", 6, 3, 1)]
    assert dict(report.boards[1].provenance)["commit"] == "commit2"
    assert report.counts() == {REPRODUCED: 3, BELOW: 1, ABOVE: 1, NO_RESULT: 0}


def test_markdown_states_the_rule_and_is_deterministic(boards):
    folder, registry = boards
    text = markdown(collect(folder, registry))
    assert text == markdown(collect(folder, registry))
    assert "within our mean ± 2 std or within 0.01 of our mean" in text
    assert "5 published numbers matched: 3 reproduced, 1 below paper, 1 above paper." in text
    row = next(line for line in text.splitlines() if "| NMI" in line and "| kmeans " in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == ["paper", "paperset", "complete", "kmeans", "NMI", "0.5000", "0.6000 ± 0.0000", "3",
                     "+0.1000", "above paper", "1", "paper"]
    assert "| 0.7950 " in text  # one seed: no std
    assert "- `empty`: no records yet (`mvbench sweep empty`)" in text
    assert "1 recorded trials not counted" in text and "smoke-paper" not in text
    assert str(folder) not in text  # nothing machine-specific


def test_report_command_writes_and_checks(boards, cli, monkeypatch):
    folder, registry = boards
    monkeypatch.setattr("mvbench.commands.report.registry_from", lambda args: registry)
    code, out, _ = cli("report", "--check", "--leaderboards", str(folder))
    assert code == 1 and "mismatch" in out  # nothing committed yet
    code, out, _ = cli("report", "--leaderboards", str(folder))
    assert code == 0 and "wrote" in out and "5 published numbers" in out
    written = folder / "REPRODUCTION.md"
    assert written.read_text() == markdown(collect(folder, registry))
    code, out, _ = cli("report", "--check", "--leaderboards", str(folder))
    assert code == 0 and "matches the records" in out
    # A rerun that moves a number: the committed report no longer matches.
    suite = load_suite(folder / "paper.toml", registry)
    rerun = records_for(suite, registry, 2, results={("kmeans", "none", 0): (0.40, 0.60)})
    append_record(folder / "results" / "paper" / "trials.jsonl", rerun[0])
    code, out, _ = cli("report", "--check", "--leaderboards", str(folder))
    assert code == 1 and "mismatch" in out and "-| paper" in out and "+| paper" in out
    assert "run 'mvbench report'" in out


def test_a_missing_leaderboards_folder_is_a_one_line_error(tmp_path, cli):
    code, _, err = cli("report", "--leaderboards", str(tmp_path / "nowhere"))
    assert code == 2 and err.startswith("error: leaderboards folder") and len(err.strip().splitlines()) == 1


def test_a_suite_board_says_which_records_of_older_versions_it_left_out(boards):
    from mvbench.leaderboard import build
    from mvbench.results import read_records

    folder, registry = boards
    suite = load_suite(folder / "paper.toml", registry)
    planned = keyed(expand(suite), registry, torch.device("cpu"), "fp32")
    board = build("paper", read_records(folder / "results" / "paper" / "trials.jsonl"), registry, suite, planned)
    assert board.meta["left_out"] == "records of older method versions left out: 1 of kmeans version 1 (now 2)"
    assert set(board.table["method_version"]) == {2}
