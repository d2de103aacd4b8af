"""The Python API: run, sweep, records, board and trial_rows, and the example in docs/api.md."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from mvbench import api
from mvbench.errors import MvbenchError
from mvbench.results import RECORDS_FILE, read_records

DOCS = Path(__file__).resolve().parent.parent / "docs" / "api.md"
SMALL = {"samples": 60, "dims": [5]}


def test_run_returns_a_row_per_trial_and_resumes(tmp_path):
    first = api.run("kmeans", "synthetic", seeds=2, dataset_options=SMALL, options={"n_init": 2}, out=tmp_path,
                    device="cpu")
    assert first["seed"].tolist() == [0, 1] and (first["status"] == "ok").all()
    assert first["acc"].between(0, 1).all() and first["method_options"][0]["n_init"] == 2
    again = api.run("kmeans", "synthetic", seeds=[0, 1, 2], dataset_options=SMALL, options={"n_init": 2},
                    out=tmp_path, device="cpu")
    assert again["seed"].tolist() == [0, 1, 2]
    assert len(read_records(tmp_path / RECORDS_FILE)) == 3  # seeds 0 and 1 were not run again
    assert again["trial_key"].tolist()[:2] == first["trial_key"].tolist()
    assert pd.read_csv(tmp_path / "summary.csv")["n_seeds"].tolist() == [3]


def test_run_mistakes_raise_one_line_errors(tmp_path):
    with pytest.raises(MvbenchError, match="did you mean 'kmeans'"):
        api.run("kmean", "synthetic", seeds=1, out=tmp_path)
    with pytest.raises(MvbenchError, match="none negative or repeated"):
        api.run("kmeans", "synthetic", seeds=[1, 1], out=tmp_path)
    with pytest.raises(MvbenchError, match="--view-rates is for --missing per-view"):
        api.run("kmeans", "synthetic", seeds=1, missing="mcar", view_rates=[0.1], out=tmp_path)


def test_sweep_records_board_and_trial_rows(tmp_path):
    frame = api.sweep(methods="kmeans[n_init=1],kmeans", datasets=["synthetic"], rates=[0.2], seeds=2,
                      dataset_options=SMALL, out=tmp_path, device="cpu")
    assert len(frame) == 4 and set(frame["option_set"].fillna("-")) == {"kmeans[n_init=1]", "-"}
    assert set(frame["rate"]) == {0.2} and set(frame["missing"]) == {"mcar"}
    records = api.records(tmp_path)
    assert len(records) == 4 and list(records.columns[:4]) == ["trial_key", "status", "method", "variant"]
    assert len(api.records(tmp_path / RECORDS_FILE, latest=False)) == 4
    board = api.board(results=tmp_path)
    assert board.table["option_set"].tolist() == ["kmeans[n_init=1]", "default"]
    assert board.table["n_seeds"].tolist() == [2, 2]
    rows = api.trial_rows(results=tmp_path)
    assert sorted(rows["seed"]) == [0, 0, 1, 1] and rows.attrs["left_out"] == ""
    # Running the same sweep again runs nothing and returns the same trials.
    again = api.sweep(methods="kmeans[n_init=1],kmeans", datasets=["synthetic"], rates=[0.2], seeds=2,
                      dataset_options=SMALL, out=tmp_path, device="cpu")
    assert sorted(again["trial_key"]) == sorted(frame["trial_key"])
    assert len(read_records(tmp_path / RECORDS_FILE)) == 4


def test_a_suite_by_name(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text('[suite]\nseeds = 2\ndevice = "cpu"\n\n[[methods]]\nname = "kmeans"\nmethod = "kmeans"\n'
                     'options = { n_init = 1 }\n\n[[datasets]]\nname = "synthetic"\n'
                     'options = { samples = 60, dims = [5] }\n')
    frame = api.sweep(suite)
    assert len(frame) == 2 and set(frame["suite"]) == {"tiny"}
    assert api.board(suite).table["n_seeds"].tolist() == [2]
    assert len(api.trial_rows(suite)) == 2
    with pytest.raises(MvbenchError, match="with a suite, edit the suite file"):
        api.sweep(suite, seeds=3)


def test_reading_an_empty_folder_says_what_to_do(tmp_path):
    with pytest.raises(MvbenchError, match="no trial records in"):
        api.records(tmp_path)
    with pytest.raises(MvbenchError, match="name a suite, or give results=DIR"):
        api.board()


def test_the_docs_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    assert blocks, "docs/api.md has no python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, str(DOCS), "exec"), {})
    out = capsys.readouterr().out
    assert "acc_mean" in out and "p_value" in out
    assert (tmp_path / "results" / "km" / RECORDS_FILE).is_file()
