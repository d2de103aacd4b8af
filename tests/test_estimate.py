"""Time estimates from finished trials: which records count, the one-line estimate of run and
sweep --dry-run, and the countdown in the trials bar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.progress import Progress

from mvbench import api
from mvbench.device import cpu_model
from mvbench.estimate import (Countdown, FinishedTimes, TimeLeftColumn, describe, duration, finished_times,
                              trial_seconds)
from mvbench.registry import get_registry
from mvbench.results import RECORDS_FILE
from mvbench.runner import Trial, resolve

TINY = ["--set", "dataset.samples=60", "--set", "dataset.dims=5"]


def _record(wall_time: float, method: str = "kmeans", dataset: str = "synthetic", device: str = "cpu",
            method_options: dict | None = None, dataset_options: dict | None = None, status: str = "ok",
            device_name: str = "x86_64 (1 threads)") -> dict:
    return {"status": status, "method": method, "dataset": dataset, "device": device, "wall_time": wall_time,
            "method_options": method_options or {}, "dataset_options": dataset_options or {},
            "device_name": device_name}


def _resolved(method: str = "kmeans", **method_options):
    return resolve(Trial(method=method, dataset="synthetic", seed=0, method_options=method_options), get_registry())


def test_only_finished_trials_of_the_same_method_options_dataset_and_device_count():
    times = FinishedTimes([
        _record(10, method_options={"n_init": 3}), _record(30, method_options={"n_init": 3}),
        _record(20, method_options={"n_init": 3}),
        _record(500, method_options={"n_init": 10}),                         # other options
        _record(500, method_options={"n_init": 3}, device="cuda:0"),         # another kind of device
        _record(500, method_options={"n_init": 3}, status="failed"),         # not finished
        _record(500, method_options={"n_init": 3}, dataset="msrcv1"),        # another dataset
        _record(500, method_options={"n_init": 3}, dataset_options={"samples": 2000}),
    ], where="here")
    assert times.seconds(_resolved(n_init=3), "cpu") == 20
    assert times.seconds(_resolved(n_init=3), "cuda") == 500
    assert times.seconds(_resolved(n_init=5), "cpu") is None
    assert times.seconds(_resolved("rav"), "cpu") is None


def test_a_record_made_before_an_option_existed_counts_as_made_at_its_default():
    times = FinishedTimes([_record(42, method_options={"n_init": 3})], where="here")  # no max_iter in it
    assert times.seconds(_resolved(n_init=3, max_iter=300), "cpu") == 42  # the default max_iter
    assert times.seconds(_resolved(n_init=3, max_iter=20), "cpu") is None  # not what the record ran


def test_records_made_on_the_same_hardware_are_preferred_whatever_their_thread_count():
    times = FinishedTimes([
        _record(100, device_name="Intel Xeon (1 threads)"), _record(110, device_name="Intel Xeon (1 threads)"),
        _record(60, device_name="AMD EPYC (1 threads)"), _record(70, device_name="AMD EPYC (2 threads)"),
        _record(80, device_name="AMD EPYC (1 threads)"),
    ], where="here")
    assert times.seconds(_resolved(), "cpu", "AMD EPYC") == 70
    assert times.seconds(_resolved(), "cpu", "Intel Xeon") == 105
    assert times.seconds(_resolved(), "cpu", "a third CPU") == 80  # none recorded there: all of them
    assert times.seconds(_resolved(), "cpu") == 80


def test_records_of_the_current_method_version_are_preferred_over_the_hardware():
    rav = _resolved("rav")
    old, current = rav.method.version - 1, rav.method.version
    times = FinishedTimes([
        {**_record(100, method="rav", device_name="AMD EPYC (1 threads)"), "method_version": old},
        {**_record(300, method="rav", device_name="Intel Xeon (1 threads)"), "method_version": current},
        {**_record(500, method="rav", device_name="Intel Xeon (1 threads)"), "method_version": current},
    ], where="here")
    assert times.seconds(rav, "cpu", "AMD EPYC") == 400  # the old version's EPYC trial does not count
    only_old = FinishedTimes([{**_record(100, method="rav"), "method_version": old},
                              _record(60, method="rav")], where="here")  # no method_version: version 1
    assert only_old.seconds(rav, "cpu") == 80  # no record of the current version: every version


def test_the_estimate_names_the_hardware_it_prefers(tmp_path):
    registry, pending = _pending(tmp_path, methods="kmeans")
    times = FinishedTimes([_record(600, device_name="AMD EPYC (1 threads)")], where="FILES")
    seconds = trial_seconds(pending, registry, "cpu", times, "AMD EPYC")
    assert describe(pending, seconds, "cpu", "FILES", hardware="AMD EPYC") == (
        "estimated time: 2 trials x about 10 min = about 20 min (median wall time of finished trials of the same "
        "method (its current version where recorded), options and dataset on cpu (AMD EPYC where recorded there) in "
        "FILES)")


def _pending(tmp_path, methods="kmeans,rav", seeds=(0, 1)):
    registry = get_registry()
    prepared = api.prepare_sweep(registry, methods=methods, datasets=["synthetic"], seeds=list(seeds), out=tmp_path)
    return registry, prepared.pending


def test_the_estimate_says_trials_x_minutes_and_names_what_it_cannot_estimate(tmp_path):
    registry, pending = _pending(tmp_path)
    times = FinishedTimes([_record(t) for t in (10, 20, 60)], where="FILES")
    seconds = trial_seconds(pending, registry, "cpu", times)
    assert describe(pending, seconds, "cpu", "FILES") == (
        "estimated time: at least 40 s for 2 of 4 trials (median wall time of finished trials of the same "
        "method (its current version where recorded), options and dataset on cpu in FILES); no finished trial to go "
        "by for rav on synthetic (2)")
    times = FinishedTimes([_record(t) for t in (10, 20, 60)] + [_record(3000, method="rav")], where="FILES")
    seconds = trial_seconds(pending, registry, "cpu", times)
    assert describe(pending, seconds, "cpu", "FILES").startswith("estimated time: about 1 h 41 min for 4 trials (")
    kmeans_only = [p for p in pending if p.trial.method == "kmeans"]
    assert describe(kmeans_only, seconds, "cpu", "FILES", lanes=2).startswith(
        "estimated time: 2 trials x about 20 s = about 40 s one at a time, about 20 s 2 at a time (")
    assert describe(pending, {}, "cpu", "FILES") == (
        "cannot estimate the time: no finished trial of the same method, options and dataset on cpu in FILES")


def _write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_committed_records_and_the_results_file_both_count(tmp_path):
    board = tmp_path / "leaderboards"
    _write(board / "results" / "demo" / RECORDS_FILE, [_record(100)])
    out = tmp_path / "out" / RECORDS_FILE
    _write(out, [_record(300)])
    times = finished_times(out, folders=[board])
    assert times.seconds(_resolved(), "cpu") == 200  # the median of both files' trials
    assert times.where == f"{out} and {board / 'results'}/*/{RECORDS_FILE}"
    assert finished_times(None, folders=[board]).seconds(_resolved(), "cpu") == 100


def test_run_says_up_front_how_long_it_will_take(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ./leaderboards is searched first, as for suite names
    _write(tmp_path / "leaderboards" / "results" / "demo" / RECORDS_FILE,
           [_record(600, method_options={"n_init": 1}, dataset_options={"samples": 60, "dims": [5]})])
    code, out, err = cli("run", "-m", "kmeans", "-d", "synthetic", "--seeds", "3", "--set", "n_init=1", *TINY,
                         "--out", str(tmp_path / "r"))
    assert code == 0, err
    assert ("estimated time: 3 trials x about 10 min = about 30 min (median wall time of finished trials of the "
            f"same method (its current version where recorded), options and dataset on cpu ({cpu_model()} where "
            f"recorded there) in ") in out
    code, out, _ = cli("run", "-m", "kmeans", "-d", "synthetic", "--seeds", "1,", "--set", "n_init=2", *TINY,
                       "--out", str(tmp_path / "r2"))
    assert code == 0 and "cannot estimate the time: no finished trial of the same method" in out


# --- the countdown ------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_countdown_subtracts_the_running_trial_and_learns_from_finished_ones():
    clock = Clock()
    countdown = Countdown({"a": 100.0, "b": 100.0, "c": 100.0}, clock=clock)
    countdown.start(["a", "b", "c"])
    assert countdown.remaining() == 300
    clock.now = 40
    assert countdown.remaining() == 260
    clock.now = 150  # trial a overruns its estimate: the others still count in full
    assert countdown.remaining() == 200
    countdown.finished({"trial_key": "a", "wall_time": 150.0})
    assert countdown.remaining() == pytest.approx(300)  # b and c scaled by 150/100
    countdown.finished({"trial_key": "b", "wall_time": 150.0})
    countdown.finished({"trial_key": "c", "wall_time": 150.0})
    assert countdown.remaining() == 0


def test_the_countdown_without_estimates_waits_for_a_finished_trial_and_spreads_over_lanes():
    clock = Clock()
    countdown = Countdown({"a": None, "b": None, "c": None, "d": None, "e": 60.0}, lanes=2, clock=clock)
    countdown.start(["a", "b", "c", "d"])  # e was left to another process
    assert countdown.remaining() is None
    countdown.finished({"trial_key": "a", "wall_time": 30.0})
    assert countdown.remaining() == pytest.approx(45)  # 3 x 30 s over 2 workers
    clock.now = 10
    assert countdown.remaining() == pytest.approx(35)


def test_the_time_left_column_shows_on_the_trials_row_only():
    clock = Clock()
    countdown = Countdown({"a": 3725.0}, clock=clock)
    column = TimeLeftColumn(countdown)
    progress = Progress(column)
    column.task_id = progress.add_task("trials", total=1)
    epochs = progress.add_task("epochs", total=10)
    assert column.render(progress.tasks[column.task_id]).plain == "~1:02:05 left"
    assert column.render(progress.tasks[epochs]).plain == ""
    assert TimeLeftColumn(Countdown({"a": None})).render(progress.tasks[0]).plain == ""  # not its task
    unknown = TimeLeftColumn(Countdown({"a": None}))
    unknown.task_id = column.task_id
    assert unknown.render(progress.tasks[column.task_id]).plain == "~-:--:-- left"


def test_durations_read_as_a_person_would_say_them():
    assert [duration(s) for s in (0.4, 40, 89.4, 89.6, 660, 6060)] == [
        "0 s", "40 s", "89 s", "2 min", "11 min", "1 h 41 min"]
