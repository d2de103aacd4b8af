"""Fixed missing-view patterns read from the incomplete benchmark files, and the ``file``
missingness mechanism that applies them."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io

from mvbench.errors import MvbenchError
from mvbench.missing import make_mask
from mvbench.specs import Dataset
from mvbench_datasets.manifest import load_manifest, mvbench_datasets
from mvbench_plugins.missingness.file import SPEC as FILE

ENTRIES = {entry["name"]: entry for entry in load_manifest()}
SPECS = {spec.name: spec for spec in mvbench_datasets()}
MASKED = sorted(name for name, entry in ENTRIES.items() if "missing_definition" in entry)


def load(name, data_dir):
    return SPECS[name].load({}, str(data_dir))


def test_every_fixed_mask_entry_is_listed():
    assert len(MASKED) == 13
    assert {"msrcv1-missing-0.5", "ngs-per0.5", "bdgp3v-per0.5", "3sources-incomplete"} <= set(MASKED)


@pytest.mark.parametrize("name", MASKED)
def test_mask_facts_match_the_manifest(shared_data, name):
    entry = ENTRIES[name]
    observed = load(name, shared_data).observed
    assert observed.shape == (entry["n"], entry["v"]) and observed.any(axis=1).all()
    assert int(observed.all(axis=1).sum()) == entry["complete_samples"]
    assert observed.sum(axis=0).tolist() == entry["observed_per_view"]


@pytest.mark.parametrize("rate", ["0.1", "0.3", "0.5", "0.7"])
def test_msrcv1_missing_matrix_matches_the_zero_rows(shared_data, rate):
    raw = scipy.io.loadmat(shared_data / "incomplete" / f"MSRCv1_missing_{rate}.mat")
    missing = raw["missing_matrix"] == 1
    zero_rows = np.stack([~np.any(x != 0, axis=1) for x in raw["X"].ravel()], axis=1)
    np.testing.assert_array_equal(missing, zero_rows)
    assert missing.sum(axis=0).tolist() == [int(210 * float(rate) / 5)] * 5
    dataset = load(f"msrcv1-missing-{rate}", shared_data)
    np.testing.assert_array_equal(dataset.observed, ~missing)
    # observed rows are those of the complete MSRCv1
    complete = load("msrcv1", shared_data)
    for v in range(5):
        np.testing.assert_array_equal(dataset.views[v][~missing[:, v]], complete.views[v][~missing[:, v]])


@pytest.mark.parametrize("stem, name", [("NGs_Per0.5", "ngs-per0.5"), ("BDGP_fea_Per0.3", "bdgp3v-per0.3")])
def test_per_files_index_matches_nan_columns(shared_data, stem, name):
    raw = scipy.io.loadmat(shared_data / "incomplete" / f"{stem}.mat")
    data, index = raw["data"].ravel(), raw["index"].ravel()
    n = data[0].shape[1]
    from_index = np.zeros((n, len(index)), bool)
    for v, ids in enumerate(index):
        from_index[ids.ravel().astype(int) - 1, v] = True
    nan_columns = np.stack([np.isnan(x).all(axis=0) for x in data], axis=1)
    np.testing.assert_array_equal(from_index, ~nan_columns)
    dataset = load(name, shared_data)
    np.testing.assert_array_equal(dataset.observed, from_index)
    assert all(np.isfinite(x).all() for x in dataset.views)
    assert all((x[~dataset.observed[:, v]] == 0).all() for v, x in enumerate(dataset.views))


def test_ngs_per05_counts(shared_data):
    observed = load("ngs-per0.5", shared_data).observed
    assert int(observed.all(axis=1).sum()) == 250  # Per 0.5: half the samples keep all views
    incomplete = observed[~observed.all(axis=1)]
    assert incomplete.any(axis=1).all() and len(incomplete) == 250


def test_3sources_incomplete_uses_ind(shared_data):
    raw = scipy.io.loadmat(shared_data / "incomplete" / "3Sources_natural_incomplete_416.mat")
    dataset = load("3sources-incomplete", shared_data)
    np.testing.assert_array_equal(dataset.observed, raw["ind"] == 1)
    assert int(dataset.observed.all(axis=1).sum()) == load("3sources", shared_data).n_samples == 169


def test_bdgp3v_index_listing_everything_is_complete(shared_data):
    assert load("bdgp3v", shared_data).observed is None


def test_file_mechanism_returns_the_file_mask(shared_data):
    dataset = load("msrcv1-missing-0.5", shared_data)
    masks = [make_mask(dataset, FILE, {}, seed) for seed in (0, 1, 2)]
    for mask in masks:
        np.testing.assert_array_equal(mask, dataset.observed)
    masks[0][:] = False
    assert dataset.observed.any()  # the mechanism hands out copies
    assert "fixed" in FILE.definition and FILE.name == "file"


def test_file_mechanism_without_mask_names_datasets_that_have_one():
    dataset = Dataset("plain", [np.zeros((4, 2), np.float32)], np.arange(4) % 2, 2)
    with pytest.raises(MvbenchError, match=r"no fixed missing-view pattern.*ngs-per0\.5.*mcar"):
        FILE.make_mask(dataset, {}, np.random.default_rng(0))


def test_run_with_the_file_mask(cli, shared_data, tmp_path):
    code, out, err = cli("--data-dir", str(shared_data), "run", "-m", "kmeans", "-d", "msrcv1-missing-0.5",
                         "--missing", "file", "--seeds", "1", "-q", "--out", str(tmp_path / "res"))
    assert code == 0, err
    assert "msrcv1-missing-0.5" in out
