"""An absent registry dataset is downloaded on first use (checksummed, with a progress bar), or,
offline (--offline, $MVBENCH_OFFLINE), stops the command before any trial with one line. Files
are served by a local HTTP server: no test touches the network."""

from __future__ import annotations

import hashlib
import sys
import textwrap

import numpy as np
import pytest
import scipy.io

from mvbench.results import RECORDS_FILE, read_records

FILE = "Tiny.mat"


@pytest.fixture
def served(server, tmp_path, monkeypatch):
    """A small .mat file on the local server and a plugin whose manifest entry points at it,
    with its sha256; yields (plugin module, data dir, the served file, requests)."""
    folder, base, requested = server
    rng = np.random.default_rng(0)
    cell = np.empty((1, 2), dtype=object)
    cell[0, 0], cell[0, 1] = rng.normal(size=(30, 4)), rng.normal(size=(30, 3))
    scipy.io.savemat(folder / FILE, {"X": cell, "Y": (np.arange(30) % 3 + 1).reshape(-1, 1)})
    sha256 = hashlib.sha256((folder / FILE).read_bytes()).hexdigest()
    module = f"mvbench_download_plugin_{base.rsplit(':', 1)[1]}"  # one module per server port
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(f'''
        from mvbench.hookspecs import hookimpl
        from mvbench_datasets.manifest import spec_for

        ENTRY = {{"name": "tinyfetch", "description": "test download", "citation": "none",
                  "file": "{FILE}", "sha256": "{sha256}", "urls": ["{base}/{FILE}"],
                  "n": 30, "v": 2, "k": 3, "views": "X", "labels": "Y", "orientation": "rows"}}


        @hookimpl
        def mvbench_datasets():
            return [spec_for(ENTRY)]
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield module, tmp_path / "data", folder / FILE, requested
    sys.modules.pop(module, None)


def _run(cli, module, data_dir, out, *flags):
    return cli(*flags, "-p", module, "--data-dir", str(data_dir), "run", "-m", "kmeans", "-d", "tinyfetch",
               "--seeds", "2", "--out", str(out), "-q")


def test_an_absent_dataset_is_downloaded_checksummed_on_first_use(cli, served, tmp_path, monkeypatch):
    module, data_dir, remote, requested = served
    monkeypatch.delenv("MVBENCH_OFFLINE")
    code, out, err = _run(cli, module, data_dir, tmp_path / "out")
    assert code == 0, err
    assert (data_dir / FILE).read_bytes() == remote.read_bytes()
    assert requested == [f"/{FILE}"]
    assert f"downloading {FILE}" in err  # the progress bar
    assert [r["status"] for r in read_records(tmp_path / "out" / RECORDS_FILE)] == ["ok", "ok"]
    code, _, err = _run(cli, module, data_dir, tmp_path / "again")
    assert code == 0 and requested == [f"/{FILE}"] and "downloading" not in err  # present: no download


@pytest.mark.parametrize("how", ["--offline", "MVBENCH_OFFLINE"])
def test_offline_an_absent_dataset_stops_before_any_trial_with_one_line(cli, served, tmp_path, monkeypatch, how):
    module, data_dir, _, requested = served
    monkeypatch.setenv("MVBENCH_OFFLINE", "1") if how == "MVBENCH_OFFLINE" else monkeypatch.delenv("MVBENCH_OFFLINE")
    code, out, err = _run(cli, module, data_dir, tmp_path / "out", *(["--offline"] if how == "--offline" else []))
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: ")
    assert f"dataset 'tinyfetch' needs {FILE}, which is not there (automatic downloads are off" in err
    assert f"looked in {data_dir}" in err and "mvbench datasets fetch tinyfetch" in err
    assert requested == [] and not (tmp_path / "out").exists() and not data_dir.exists()


def test_a_corrupt_download_is_one_line_and_leaves_nothing_valid(cli, served, tmp_path, monkeypatch):
    module, data_dir, remote, requested = served
    monkeypatch.delenv("MVBENCH_OFFLINE")
    remote.write_bytes(remote.read_bytes()[:-10] + b"corrupted!")  # the manifest's sha256 no longer fits
    code, out, err = _run(cli, module, data_dir, tmp_path / "out")
    assert f"downloading {FILE}" in err  # the progress bar, then the error on one line
    error = err.strip().splitlines()[-1]
    assert code == 2 and err.count("error:") == 1 and error.startswith("error: ") and "Traceback" not in err
    assert "the automatic download failed: could not download Tiny.mat" in error and "hash" in error.lower()
    assert f"dataset 'tinyfetch' needs {FILE}" in error and "mvbench datasets fetch tinyfetch" in error
    assert requested == [f"/{FILE}"]
    assert not (tmp_path / "out").exists()
    assert list(data_dir.iterdir()) == []  # neither the file nor a temporary one


def test_offline_still_fetches_on_request(cli, served):
    module, data_dir, remote, _ = served  # $MVBENCH_OFFLINE=1, as in every test
    code, out, err = cli("-p", module, "--data-dir", str(data_dir), "datasets", "fetch", "tinyfetch")
    assert code == 0, err
    assert (data_dir / FILE).read_bytes() == remote.read_bytes() and "sha256 ok" in out
