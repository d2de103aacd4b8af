import json

import pytest

from mvbench.results import RECORDS_FILE, append_record, read_records
from mvbench.runner import Trial

from run_helpers import run_trials

SMALL = {"samples": "60", "dims": "5"}


def run(tmp_path, **kw):
    seeds = kw.pop("seeds", [0])
    trials = [Trial(dataset=kw.pop("dataset", "synthetic"), seed=s,
                    dataset_options=kw.pop("dataset_options", SMALL), **kw) for s in seeds]
    return run_trials(trials, tmp_path)


def test_same_seed_gives_identical_labels_and_record_provenance(tmp_path):
    first = run(tmp_path / "a", method="kmeans", seeds=[0, 1])
    again = run(tmp_path / "b", method="kmeans", seeds=[0, 1])
    assert [r["labels_sha256"] for r in first] == [r["labels_sha256"] for r in again]
    assert [r["trial_key"] for r in first] == [r["trial_key"] for r in again]
    record = first[0]
    assert record["status"] == "ok"
    assert set(record["metrics"]) == {"acc", "nmi", "ari", "pur", "f"}
    assert record["method_options"] == {"n_init": 10, "max_iter": 300, "standardize": True}
    for key in ("seed", "wall_time", "train_time", "peak_rss_mb", "device", "device_name",
                "missing_definition", "fill", "trial_key", "preprocessing"):
        assert key in record, key
    assert set(record["versions"]) >= {"mvbench", "torch", "numpy", "python", "git_commit"}
    assert read_records(tmp_path / "a" / RECORDS_FILE) == json.loads(json.dumps(first))


def test_two_methods_in_a_trial_seed_see_the_same_mask(tmp_path):
    kw = dict(missing="mcar", missing_options={"rate": "0.5"}, seeds=[5])
    a = run(tmp_path, method="probe", **kw)[0]
    b = run(tmp_path, method="probe-missing", **kw)[0]
    c = run(tmp_path, method="probe", missing="mcar", missing_options={"rate": "0.5"}, seeds=[6])[0]
    assert a["extras"]["mask_sha256"] == b["extras"]["mask_sha256"] != c["extras"]["mask_sha256"]
    assert a["incomplete_fraction"] == pytest.approx(0.5)


def test_missing_rows_are_nan_only_for_methods_that_handle_them(tmp_path):
    kw = dict(missing="mcar", missing_options={"rate": "0.5"})
    handles = run(tmp_path, method="probe-missing", **kw)[0]
    filled = run(tmp_path, method="probe", **kw)[0]
    assert handles["extras"]["nan_in_missing"] and not handles["extras"]["nan_in_observed"]
    assert handles["fill"] is None
    assert not filled["extras"]["nan_in_missing"] and filled["fill"] == "mean"
    assert "mean of that view's observed rows" in filled["fill_definition"]


def test_preset_applies_and_user_value_wins(tmp_path):
    preset = run(tmp_path, method="probe")[0]
    assert preset["extras"]["options"]["alpha"] == 2.0 and preset["preset"] == {"alpha": 2.0}
    user = run(tmp_path, method="probe", method_options={"alpha": "5"})[0]
    assert user["extras"]["options"]["alpha"] == 5.0


def test_nan_loss_is_recorded_as_failed_and_later_trials_still_run(tmp_path):
    trials = [Trial(method="diverge", dataset="synthetic", seed=0, dataset_options=SMALL),
              Trial(method="kmeans", dataset="synthetic", seed=0, dataset_options=SMALL)]
    records = run_trials(trials, tmp_path)
    assert records[0]["status"] == "failed"
    assert "NonFiniteLossError" in records[0]["error"] and "nan" in records[0]["error"]
    assert records[1]["status"] == "ok"
    assert [r["status"] for r in read_records(tmp_path / RECORDS_FILE)] == ["failed", "ok"]


def test_interrupt_keeps_every_finished_trial(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, method="interrupt", seeds=[0, 1, 2])
    kept = read_records(tmp_path / RECORDS_FILE)
    assert [r["seed"] for r in kept] == [0]
    assert kept[0]["status"] == "ok"


def test_torn_last_line_is_ignored_and_repaired(tmp_path):
    path = tmp_path / RECORDS_FILE
    append_record(path, {"seed": 0})
    with open(path, "a") as handle:
        handle.write('{"seed": 1, "trunc')  # a write cut short by a crash
    assert [r["seed"] for r in read_records(path)] == [0]
    append_record(path, {"seed": 2})
    assert [r["seed"] for r in read_records(path)] == [0, 2]
    assert path.read_text().count("\n") == 2


def test_trial_key_ignores_option_order(tmp_path):
    a = run(tmp_path, method="probe", method_options={"alpha": "3", "mode": "b"})[0]
    b = run(tmp_path, method="probe", method_options={"mode": "b", "alpha": "3"})[0]
    c = run(tmp_path, method="probe", method_options={"mode": "a", "alpha": "3"})[0]
    assert a["trial_key"] == b["trial_key"] != c["trial_key"]


def test_a_generated_mask_refits_the_scaling_on_observed_rows_only(tmp_path):
    # MinMax statistics must not see the rows the trial's mask hides: refitted on the observed
    # rows, every feature's observed range is exactly [0, 1] again (fitted on all rows, the
    # hidden rows would hold some of the extremes).
    options = {**SMALL, "preprocess": "minmax"}
    (record,) = run(tmp_path, method="probe-missing", missing="mcar",
                    missing_options={"rate": "0.5"}, dataset_options=options)
    assert record["status"] == "ok" and record["incomplete_fraction"] == 0.5
    assert any("statistics over observed rows" in step for step in record["preprocessing"])
    assert all(r == [0.0, 1.0] for r in record["extras"]["observed_range"])
    (complete,) = run(tmp_path / "c", method="probe-missing", dataset_options=options)
    assert not any("observed rows" in step for step in complete["preprocessing"])
    assert complete["trial_key"] != record["trial_key"]


def test_a_checkout_is_dirty_for_modified_code_but_not_for_appended_records(tmp_path):
    import subprocess

    from mvbench.provenance import checkout_commit

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "leaderboards").mkdir()
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "leaderboards" / "trials.jsonl").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    clean = checkout_commit(tmp_path)
    assert clean and not clean.endswith("+dirty")
    (tmp_path / "leaderboards" / "trials.jsonl").write_text("{}\n{}\n")
    assert checkout_commit(tmp_path) == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert checkout_commit(tmp_path) == clean + "+dirty"
    assert checkout_commit(tmp_path / "nowhere") is None
