"""``mvbench show FILE.mat``: the layout a run finds in a dataset file and the preprocessing applied."""

from __future__ import annotations

import numpy as np
import scipy.io
import scipy.sparse as sp

from mvbench.data.pathdataset import describe_path


def _write(path, *, mask: bool = False) -> None:
    rng = np.random.default_rng(0)
    variables = {
        "X1": rng.random((12, 3)) * 4,  # N x d, values in [0, 4)
        "X2": sp.csr_matrix(np.eye(5, 12)),  # d x N (transposed), sparse: 5 of 60 entries non-zero
        "gt": np.repeat([1, 2, 3], 4).reshape(-1, 1),
    }
    if mask:
        missing = np.zeros((12, 2))
        missing[[0, 5], 1] = 1
        variables["missing_matrix"] = missing
    scipy.io.savemat(path, variables)


def test_show_prints_the_layout_found_and_the_default_preprocessing(cli, tmp_path):
    file = tmp_path / "mine.mat"
    _write(file)
    code, out, _ = cli("show", str(file))
    assert code == 0
    lines = out.splitlines()
    assert "layout: 2 views (X1, X2); labels gt: 12 samples, 3 classes; orientation mixed" in out
    assert any(line.startswith("view X1: 3 features, values in [0.") and "100.0% non-zero" in line for line in lines)
    assert "view X2: 5 features, values in [0, 1], 8.3% non-zero" in out  # read transposed: 12 x 5
    assert "missing views: none" in out
    assert "preprocessing: none (as stored) - the default for a file given by path" in out
    assert "orientation" in out and "preprocess" in out  # the options table follows


def test_show_applies_the_files_options_as_run_does(cli, tmp_path):
    file = tmp_path / "mine.mat"
    _write(file)
    code, out, _ = cli("show", str(file), "--set", "dataset.preprocess=standardize", "--set", "dataset.views=X2")
    assert code == 0
    assert "layout: 1 view (X2)" in out and "orientation columns (d x N, transposed)" in out
    assert "preprocessing: standardize (standardize: each feature" in out


def test_describe_path_names_the_files_mask_and_when_it_is_used(tmp_path):
    file = tmp_path / "masked.mat"
    _write(file, mask=True)
    lines = describe_path(file, {"preprocess": "minmax"})
    assert lines[0] == f"file: {file.resolve()}"
    assert any(line.startswith("missing views: missing_matrix marks 2 of 12 samples incomplete; used with "
                               "--missing file") for line in lines)
    assert lines[-1].startswith("preprocessing: minmax (minmax: each feature of each view scaled to [0, 1]")


def test_show_errors_are_one_line(cli, tmp_path):
    file = tmp_path / "mine.mat"
    _write(file)
    code, _, err = cli("show", "rav", "--set", "dataset.preprocess=minmax")
    assert code == 2 and "error: show --set is for a dataset file given by path" in err
    code, _, err = cli("show", str(file), "--set", "lr=1")
    assert code == 2 and "error: mvbench show FILE takes only dataset.NAME=VALUE settings" in err
    code, _, err = cli("show", str(file), "--set", "dataset.preprocess=scale")
    assert code == 2 and "'scale' is not allowed; choose one of none, minmax, standardize" in err
    code, _, err = cli("show", str(tmp_path / "absent.mat"))
    assert code == 2 and "not found" in err
    assert "Traceback" not in err
