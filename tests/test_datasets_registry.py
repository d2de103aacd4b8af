"""The benchmark manifest, its dataset plugin, checksums, fetching and `mvbench datasets`."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io

import mvbench.data.fetch as fetch
from mvbench.errors import MvbenchError
from mvbench.data.fetch import fetch_file, locate, sha256_file
from mvbench.data.pathdataset import dataset_from_path
from mvbench.registry import build_registry
from mvbench_datasets.manifest import load_manifest, mvbench_datasets

ENTRIES = {entry["name"]: entry for entry in load_manifest()}
SPECS = {spec.name: spec for spec in mvbench_datasets()}
WITH_FILES = sorted(name for name, entry in ENTRIES.items() if "sha256" in entry)


def test_manifest_entries_are_consistent():
    assert "handwritten" not in ENTRIES  # the embedded dataset plugin owns that name
    required = {"handwritten-mat", "mnist-usps", "3sources", "ngs", "msrcv1", "cora", "synthetic3d",
                "bdgp3v", "coil20-3v", "webkb", "caltech2v", "caltech3v", "caltech4v", "caltech5v",
                "bdgp", "fashion", "aloi", "nus-wide", "youtubevideo", "noisymnist",
                "msrcv1-missing-0.5", "ngs-per0.5", "bdgp3v-per0.5", "3sources-incomplete"}
    assert required <= set(ENTRIES)
    registry = build_registry()
    for name, entry in ENTRIES.items():
        assert name == name.lower() and " " not in name
        if "dims" in entry:
            assert len(entry["dims"]) == entry["v"], name
        if "sha256" in entry:
            assert re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]) and entry["size"] > 0, name
        if "urls" in entry:
            assert "sha256" in entry, f"{name}: a download without a checksum"
        for result in entry.get("results", []):
            assert {"method", "metric", "value", "setting"} <= set(result) and 0 < result["value"] <= 1
            assert set(result) <= {"method", "metric", "value", "setting", "mechanism"}
            if "mechanism" in result:  # a missingness plugin that reproduces the masks
                assert registry.mechanism(result["mechanism"]).name == result["mechanism"]
        assert SPECS[name].summary["files"] == ([entry["file"]] if "file" in entry else [])
    caltech = [ENTRIES[f"caltech{v}v"] for v in (2, 3, 4, 5)]
    assert [e["views"] for e in caltech][-1] == "X1,X2,X5,X4,X3"
    assert all(e["preprocess"] == "minmax" and e["dims"] == [40, 254, 928, 512, 1984][:e["v"]]
               for e in caltech)
    first = ENTRIES["mnist-usps"]["results"][0]
    assert (first["method"], first["metric"], first["value"]) == ("MFLVC", "ACC", 0.9966)


def test_names_and_aliases_are_unique_in_the_installed_registry():
    registry = build_registry()
    assert set(ENTRIES) <= set(registry.datasets)
    seen: dict[str, str] = {}
    for spec in registry.datasets.values():
        for alias in (spec.name, *spec.aliases):
            assert alias.lower() not in seen, f"{alias} of {spec.name} clashes with {seen.get(alias.lower())}"
            seen[alias.lower()] = spec.name
    assert registry.dataset("MNIST_USPS").name == "mnist-usps"
    assert registry.dataset("mnist_usps").name == "mnist-usps"
    assert registry.dataset("BDGP_fea_3view").name == "bdgp3v"
    assert registry.dataset("Caltech-5V").name == "caltech5v"


def test_every_shared_file_has_a_matching_entry(shared_data):
    by_file = {entry["file"]: entry for entry in ENTRIES.values() if "file" in entry}
    files = sorted(shared_data.glob("*.mat")) + sorted(shared_data.glob("incomplete/*.mat"))
    assert len(files) == 27
    for path in files:
        entry = by_file[path.name]
        assert path.stat().st_size == entry["size"], path.name
        assert sha256_file(path) == entry["sha256"], path.name


@pytest.mark.parametrize("name", [n for n in WITH_FILES if not n.startswith("caltech")])
def test_real_files_by_name_and_by_path(shared_data, name):
    entry = ENTRIES[name]
    dataset = SPECS[name].load({}, str(shared_data))
    assert (dataset.n_samples, dataset.n_views, dataset.n_clusters) == (entry["n"], entry["v"], entry["k"])
    assert dataset.dims == entry["dims"] and dataset.name == name
    assert np.array_equal(np.unique(dataset.labels), np.arange(entry["k"]))
    assert all(x.dtype == np.float32 and np.isfinite(x).all() for x in dataset.views)
    assert "sha256 verified" in dataset.source
    assert (dataset.observed is not None) == ("missing_definition" in entry)
    if entry["preprocess"] == "minmax":
        assert all(x.min() >= 0 and x.max() <= 1 for x in dataset.views)
    by_path = dataset_from_path(locate(entry["file"], shared_data), {})
    assert (by_path.n_samples, by_path.n_views, by_path.n_clusters) == (entry["n"], entry["v"], entry["k"])
    np.testing.assert_array_equal(by_path.labels, dataset.labels)


# --- Caltech-5V: not on this machine, so a file of the same layout -------------------------


FILE_DIMS = {"X1": 40, "X2": 254, "X3": 1984, "X4": 512, "X5": 928}


@pytest.fixture(scope="module")
def caltech_dir(tmp_path_factory) -> Path:
    """A Caltech-5V.mat layout: X1..X5 (N x d), Y 1 x N 1-based; small integer features."""
    folder = tmp_path_factory.mktemp("caltech")
    rng = np.random.default_rng(5)
    variables = {name: rng.integers(0, 50, size=(1400, d), dtype=np.uint8) for name, d in FILE_DIMS.items()}
    variables["Y"] = (np.arange(1400) % 7 + 1)[None, :]
    scipy.io.savemat(folder / "Caltech-5V.mat", variables)
    return folder


@pytest.mark.parametrize("v", [2, 3, 4, 5])
def test_caltech_views_in_mflvc_order_with_minmax(caltech_dir, v):
    raw = scipy.io.loadmat(caltech_dir / "Caltech-5V.mat")
    dataset = SPECS[f"caltech{v}v"].load({"verify": False}, str(caltech_dir))
    order = ["X1", "X2", "X5", "X4", "X3"][:v]
    assert dataset.dims == [FILE_DIMS[name] for name in order]
    assert (dataset.n_samples, dataset.n_clusters) == (1400, 7)
    for got, name in zip(dataset.views, order):
        x = raw[name].astype(np.float64)
        want = (x - x.min(0)) / np.where(np.ptp(x, 0) > 0, np.ptp(x, 0), 1)
        np.testing.assert_allclose(got, want, atol=1e-6)
    assert "sha256 not verified" in dataset.source
    assert dataset.preprocessing and dataset.preprocessing[0].startswith("minmax")
    as_stored = SPECS[f"caltech{v}v"].load({"verify": "false", "preprocess": "none"}, str(caltech_dir))
    np.testing.assert_array_equal(as_stored.views[-1], raw[order[-1]])


def test_checksum_mismatch_names_the_override(caltech_dir):
    with pytest.raises(MvbenchError, match=r"does not match the sha256.*--set verify=false"):
        SPECS["caltech5v"].load({}, str(caltech_dir))


def test_wrong_contents_are_caught_without_checksum(tmp_path):
    views = np.empty((1, 3), object)
    for v in range(3):
        views[0, v] = np.ones((10, 4))
    scipy.io.savemat(tmp_path / "NGs.mat", {"X": views, "Y": np.arange(10) % 2})
    with pytest.raises(MvbenchError, match=r"does not hold dataset 'ngs': n 10 \(expected 500\)"):
        SPECS["ngs"].load({"verify": False}, str(tmp_path))


def test_missing_file_says_where_and_how(tmp_path):
    with pytest.raises(MvbenchError) as info:
        SPECS["caltech5v"].load({}, str(tmp_path))
    message = str(info.value)
    assert str(tmp_path) in message and "--data-dir" in message
    assert "mvbench datasets fetch caltech5v" in message and "media.githubusercontent.com" in message
    with pytest.raises(MvbenchError, match="no download URL.*MFLVC"):
        SPECS["bdgp"].load({}, str(tmp_path))
    with pytest.raises(MvbenchError, match="no known file.*--dataset path/to/file.mat"):
        SPECS["aloi"].load({}, str(tmp_path))


def test_incomplete_subfolder_is_searched(tmp_path):
    (tmp_path / "incomplete").mkdir()
    (tmp_path / "incomplete" / "x.mat").write_bytes(b"x")
    assert locate("x.mat", tmp_path) == tmp_path / "incomplete" / "x.mat"
    assert locate("y.mat", tmp_path) is None


def test_hashes_are_cached_by_path_size_and_mtime(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    expected = hashlib.sha256(b"abc").hexdigest()
    assert sha256_file(path) == expected

    def no_hashing(*args, **kwargs):
        raise AssertionError("rehashed")

    monkeypatch.setattr(fetch.hashlib, "sha256", no_hashing)
    assert sha256_file(path) == expected
    os.utime(path, ns=(1, 1))
    with pytest.raises(AssertionError, match="rehashed"):
        sha256_file(path)


# --- fetching from a local server ----------------------------------------------------------


def test_fetch_verifies_and_never_leaves_a_bad_file(server, tmp_path):
    served, base, _ = server
    blob = os.urandom(200_000)
    (served / "remote.mat").write_bytes(blob)
    good = hashlib.sha256(blob).hexdigest()
    data_dir = tmp_path / "data"

    with pytest.raises(MvbenchError, match="could not download.*SHA256|could not download.*hash"):
        fetch_file("Local.mat", "0" * 64, [f"{base}/remote.mat"], "local", data_dir, progress=False)
    assert list(data_dir.iterdir()) == []  # neither the target nor a temporary file is left

    with pytest.raises(MvbenchError, match="404"):
        fetch_file("Local.mat", good, [f"{base}/absent.mat"], "local", data_dir, progress=False)

    path = fetch_file("Local.mat", good, [f"{base}/absent.mat", f"{base}/remote.mat"], "local",
                      data_dir, progress=False)
    assert path == data_dir / "Local.mat" and path.read_bytes() == blob
    assert [p.name for p in data_dir.iterdir()] == ["Local.mat"]
    # present and valid: no download (the URL is dead now)
    assert fetch_file("Local.mat", good, [f"{base}/gone.mat"], "local", data_dir) == path


def test_fetch_refuses_without_url_or_checksum(tmp_path):
    with pytest.raises(MvbenchError, match="no download URL"):
        fetch_file("a.mat", "0" * 64, [], "a", tmp_path)
    with pytest.raises(MvbenchError, match="no known sha256"):
        fetch_file("a.mat", None, ["http://127.0.0.1:9/a.mat"], "a", tmp_path)


# --- the command ---------------------------------------------------------------------------


def test_datasets_list_info_verify(cli, shared_data, tmp_path):
    code, out, _ = cli("--data-dir", str(shared_data), "datasets", "list")
    assert code == 0
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") > 3}
    assert "present" in rows["ngs-per0.5"] and "absent" in rows["caltech5v"]
    assert "no file known" in rows["aloi"] and "embedded" in rows["handwritten"]

    code, out, _ = cli("--data-dir", str(shared_data), "datasets", "info", "NGs_Per0.5")
    assert code == 0 and "ngs-per0.5" in out and "374, 372, 378" in out and "Per 0.5" in out
    code, out, _ = cli("datasets", "info", "mnist-usps")
    assert code == 0 and "0.9966" in out and "DIMVC-HIA" in out

    code, out, _ = cli("--data-dir", str(shared_data), "datasets", "verify", "ngs", "cora")
    assert code == 0 and out.count(" ok ") == 2

    (tmp_path / "NGs.mat").write_bytes(b"tampered")
    code, out, _ = cli("--data-dir", str(tmp_path), "datasets", "verify")
    assert code == 1 and "MISMATCH" in out
    code, out, _ = cli("--data-dir", str(tmp_path), "datasets", "verify", "cora")
    assert code == 1 and "absent" in out


def test_datasets_fetch_errors(cli, tmp_path):
    code, _, err = cli("--data-dir", str(tmp_path), "datasets", "fetch", "aloi")
    assert code == 2 and "no known file" in err
    code, _, err = cli("--data-dir", str(tmp_path), "datasets", "fetch", "fashion")
    assert code == 2 and "no download URL" in err
    code, out, _ = cli("datasets", "fetch", "handwritten")
    assert code == 0 and "nothing to fetch" in out
