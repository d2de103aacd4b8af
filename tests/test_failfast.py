"""Bad inputs stop a command before any trial runs, with one line and no results folder."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from mvbench import cli


def _mat(path, views, labels):
    cell = np.empty((1, len(views)), dtype=object)
    for v, x in enumerate(views):
        cell[0, v] = x
    scipy.io.savemat(path, {"X": cell, "Y": labels.reshape(-1, 1)})


def _run(argv, capsys):
    code = cli.main(argv)
    return code, capsys.readouterr().err


def test_an_absent_registry_file_stops_before_any_trial(tmp_path, capsys):
    out = tmp_path / "out"
    code, err = _run(["--data-dir", str(tmp_path), "run", "-m", "kmeans", "-d", "caltech5v",
                      "--seeds", "3", "--out", str(out), "-q"], capsys)
    assert code == 2
    assert err.count("error:") == 1 and "Caltech-5V.mat" in err and "mvbench datasets fetch caltech5v" in err
    assert not out.exists()


def test_one_nan_cell_in_an_observed_row_is_an_error_naming_the_view(tmp_path, capsys):
    rng = np.random.default_rng(0)
    views = [rng.normal(size=(30, 4)), rng.normal(size=(30, 3))]
    views[1][5, 2] = np.nan
    _mat(tmp_path / "bad.mat", views, np.arange(30) % 3 + 1)
    out = tmp_path / "out"
    code, err = _run(["run", "-m", "kmeans", "-d", str(tmp_path / "bad.mat"), "--out", str(out), "-q"], capsys)
    assert code == 2 and err.count("error:") == 1
    assert "NaN in 1 rows" in err and "entirely NaN" in err
    assert not out.exists()


def test_inf_is_an_error_and_an_all_nan_row_is_a_missing_row(tmp_path, capsys):
    rng = np.random.default_rng(1)
    views = [rng.normal(size=(30, 4)), rng.normal(size=(30, 3))]
    views[0][2] = np.inf
    _mat(tmp_path / "inf.mat", views, np.arange(30) % 3 + 1)
    code, err = _run(["run", "-m", "kmeans", "-d", str(tmp_path / "inf.mat"), "--out", str(tmp_path / "o"),
                      "-q"], capsys)
    assert code == 2 and "inf in 1 rows" in err
    views[0][2] = np.nan  # now a missing row: the file's mask
    _mat(tmp_path / "gap.mat", views, np.arange(30) % 3 + 1)
    code, _ = _run(["run", "-m", "kmeans", "-d", str(tmp_path / "gap.mat"), "--missing", "file",
                    "--seeds", "0,", "--out", str(tmp_path / "g"), "-q"], capsys)
    assert code == 0


@pytest.mark.parametrize("where", ["out", "data-dir"])
def test_path_problems_are_one_line_errors(tmp_path, capsys, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    argv = (["run", "-m", "kmeans", "-d", "synthetic", "--out", str(blocker / "sub"), "-q"] if where == "out"
            else ["--data-dir", str(blocker), "run", "-m", "kmeans", "-d", "ngs", "-q",
                  "--out", str(tmp_path / "o")])
    code, err = _run(argv, capsys)
    assert code == 2 and err.count("error:") == 1 and "Traceback" not in err
    assert str(blocker) in err
