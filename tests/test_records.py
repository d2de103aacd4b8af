"""The record schema: every committed record loads through the migration, new records carry
the current schema, and a record from a newer mvbench is a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_type_hints

import pytest

from mvbench.errors import MvbenchError
from mvbench.records import SCHEMA_VERSION, TrialRecord, migrate
from mvbench.results import read_records

RESULTS = Path(__file__).resolve().parents[1] / "leaderboards" / "results"


@pytest.mark.parametrize("records_file", sorted(RESULTS.glob("*/trials.jsonl")), ids=lambda p: p.parent.name)
def test_every_committed_record_migrates_to_the_current_schema(records_file):
    fields = get_type_hints(TrialRecord)
    records = read_records(records_file)
    assert records
    for record in records:
        assert record["schema_version"] == SCHEMA_VERSION
        assert isinstance(record["method_version"], int) and record["method_version"] >= 1
        assert "variant" in record
        # A failed trial has no result fields (TrialRecord is total=False), degeneracy included.
        assert "degenerate" in record or record["status"] == "failed"
        unknown = set(record) - set(fields)
        assert not unknown, f"fields missing from TrialRecord: {unknown}"


def test_a_schema_1_record_gets_version_1_and_unknown_degeneracy():
    old = {"trial_key": "k", "status": "ok", "method": "rav", "seed": 0}
    new = migrate(old)
    assert new["method_version"] == 1 and new["variant"] is None and new["degenerate"] is None
    assert new["schema_version"] == SCHEMA_VERSION and "schema_version" not in old
    assert migrate(new) == new


def test_a_record_from_a_newer_mvbench_is_a_clear_error(tmp_path):
    path = tmp_path / "trials.jsonl"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1, "trial_key": "k"}) + "\n")
    with pytest.raises(MvbenchError, match="upgrade mvbench"):
        read_records(path)


def test_a_fresh_record_has_only_declared_fields(tmp_path):
    from mvbench.runner import Trial
    from run_helpers import run_trials

    (record,) = run_trials([Trial(method="kmeans", dataset="synthetic", seed=0,
                                  dataset_options={"samples": 40})], tmp_path, plugins=())
    assert record["schema_version"] == SCHEMA_VERSION and record["status"] == "ok"
    assert set(record) <= set(get_type_hints(TrialRecord)), set(record) - set(get_type_hints(TrialRecord))
